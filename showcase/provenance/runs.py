"""Provenance checks in a running show: asked for over HTTP, run off the event loop,
recorded as one sealed event when done.

A check reads gigabytes with numpy: it runs in a worker thread (numpy, hashlib and the
memory-mapped reads let go of the GIL for the heavy work; benchmarks/bench_provenance_show.py
measures what the event loop keeps). The server's lifespan owns the task group that waits
for each one (``running``); shutting down stops a check at its next tensor.

Paths are hostile input (docs/security.md): the team's declared weights and the reference
come from the show file's ``[provenance]`` table, or a path the operator gives, and every
file the check will read (each shard an index names, config.json, tokenizer.json) must
resolve, symlinks followed, under one of the allowed roots before any is read. The check
then reads the resolved paths. A check that fails (a corrupt tensor) records nothing; its
error stays on the run for the console to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from showcase.core import findings
from showcase.core.errors import InvalidRequest, NotPermitted, ShowcaseError, StateConflict
from showcase.core.showfile import ProvenanceSettings
from showcase.provenance.errors import ProvenanceError
from showcase.runtime.engine import Engine

log = logging.getLogger(__name__)

#: Checks that read at once; more wait their turn (each one is CPU- and disk-bound).
WORKERS = 2
#: Finished runs kept for the console (every result is in the log).
KEPT = 20

RUNNING, DONE, FAILED = "running", "done", "failed"


class _Stopped(Exception):
    """The server is shutting down: the check stops at its next tensor."""


@dataclass(slots=True)
class Run:
    """One check asked for: its progress while it reads, then its seq or its error."""

    id: str
    team: str
    reference: str
    label: str
    component: str
    permutation: bool
    actor: str
    model: Path
    against: Path
    status: str = RUNNING
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    seq: int | None = None
    verdict: str | None = None
    error: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "team": self.team, "reference": self.reference,
                "label": self.label, "component": self.component, "status": self.status,
                "progress": {"done": self.done, "total": self.total},
                "started": self.started, "finished": self.finished, "seq": self.seq,
                "verdict": self.verdict, "error": self.error, "detail": self.detail,
                "actor": self.actor}


class ProvenanceChecks:
    """The server's provenance checks: start one, list them, each recorded when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings: ProvenanceSettings = engine.show.provenance
        self.runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._group: asyncio.TaskGroup | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The task group every check's task runs in, and the worker threads."""
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="provenance")
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    yield
                finally:
                    self._stopping = True  # the threads stop at their next tensor
                    self._group = None
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def listing(self) -> list[dict[str, Any]]:
        return [run.to_json() for run in reversed(self.runs.values())]

    async def start(self, actor: str, body: Any) -> Run:
        """Check the request and the paths, then start the check; 409 while the team has
        one running, 403 for a path outside the roots, 400 for a missing or corrupt file."""
        request = findings.check_request(self.engine.committed, body)
        if self._group is None or self._executor is None:
            raise StateConflict("the server is not running checks (shutting down)")
        busy = next((r for r in self.runs.values()
                     if r.team == request.team and r.status == RUNNING), None)
        if busy is not None:
            raise StateConflict(f"a provenance check of team {request.team!r} is running "
                                f"({busy.id}, against {busy.label})",
                                "wait for it to finish: GET /api/provenance",
                                seq=self.engine.committed.seq, check=busy.id)
        model, (reference, label) = self._declared(request.team), self._reference(
            request.reference)
        run = Run(f"p{next(self._ids)}", request.team, reference, label, request.component,
                  request.permutation, actor, model, model)
        self.runs[run.id] = run  # before any wait: a second request for the team is a 409
        try:
            run.model, run.against = await asyncio.to_thread(self._preflight, model,
                                                             Path(reference))
        except BaseException:
            del self.runs[run.id]
            raise
        if self._group is None:  # the server began to shut down meanwhile
            del self.runs[run.id]
            raise StateConflict("the server is not running checks (shutting down)")
        while len(self.runs) > KEPT:
            oldest = next((k for k, r in self.runs.items() if r.status != RUNNING), None)
            if oldest is None:
                break
            del self.runs[oldest]
        self._group.create_task(self._run(run))
        return run

    # -- paths -------------------------------------------------------------------------

    def _declared(self, team: str) -> Path:
        path = self.settings.weights.get(team)
        if path is None:
            raise InvalidRequest(f"team {team!r} has declared no weights",
                                 "add its folder to the show file's [provenance.weights]")
        return Path(path)

    def _reference(self, reference: str) -> tuple[str, str]:
        """The reference's path and the name it goes by on air."""
        named = self.settings.references.get(reference)
        if named is not None:
            return named, reference
        if not Path(reference).is_absolute():
            known = ", ".join(self.settings.references) or "none in the show file"
            raise InvalidRequest(f"{reference!r} is not a named reference",
                                 f"give a name ({known}) or an absolute path under one of "
                                 "[provenance] roots")
        return reference, Path(reference).name

    def _preflight(self, model: Path, against: Path) -> tuple[Path, Path]:
        """Both models resolved under the roots, every file of each too, every header
        readable: what is refused here is refused before the request is answered."""
        from showcase.provenance.weights import model_files, open_model

        roots = [Path(r).resolve() for r in self.settings.roots]
        if not roots:
            raise NotPermitted("no folder is allowed for model weights",
                               "list them in the show file: [provenance] roots = [...]")
        resolved = []
        for path in (model, against):
            real = self._under(path, roots)
            for file in model_files(real):
                self._under(file, roots)
            open_model(real)  # every header checked: a corrupt file is named now
            resolved.append(real)
        return resolved[0], resolved[1]

    @staticmethod
    def _under(path: Path, roots: list[Path]) -> Path:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise InvalidRequest(f"{path}: no such file or directory",
                                 "check the path in the request or the show file") from exc
        if not any(real.is_relative_to(root) for root in roots):
            shown = f"{path} (resolves to {real})" if real != path else str(path)
            raise NotPermitted(f"{shown} is outside the folders allowed for model weights",
                               "allowed: " + ", ".join(map(str, roots)))
        return real

    # -- the check ---------------------------------------------------------------------

    async def _run(self, run: Run) -> None:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self._executor, self._work, run)
            event = await self.engine.run(run.actor, findings.record_check, data)
        except _Stopped:
            run.status, run.error = FAILED, "stopped: the server shut down"
        except ShowcaseError as exc:
            run.status, run.error, run.detail = FAILED, exc.message, exc.detail
            log.warning("provenance check %s of %s failed: %s", run.id, run.team, exc.message)
        except Exception as exc:  # a bug must not take the server's task group down
            log.exception("provenance check %s of %s crashed", run.id, run.team)
            run.status, run.error = FAILED, f"internal error ({type(exc).__name__})"
        else:
            run.status, run.seq, run.verdict = DONE, event.seq, event.data["verdict"]
        run.finished = time.time()

    def _work(self, run: Run) -> dict[str, Any]:
        """In a worker thread: the check, then the files' hashes."""
        from showcase.provenance import finding
        from showcase.provenance.check import check

        def progress(done: int, total: int) -> None:
            if self._stopping:
                raise _Stopped
            run.done, run.total = done, total

        started = time.monotonic()
        try:
            report = check(run.model, run.against, run.component, progress=progress,
                           permutation=run.permutation)
            model = finding.side(run.model, run.team, report.declared_a)
            against = finding.side(run.against, run.label, report.declared_b)
        except OSError as exc:
            raise ProvenanceError(f"{exc.filename or run.model}: cannot be read: "
                                  f"{exc.strerror}") from exc
        return finding.finding(report, run.team, run.reference, run.component, model,
                               against, time.monotonic() - started)
