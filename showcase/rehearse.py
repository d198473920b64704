"""``showcase rehearse SHOW``: the whole show, the day before, with nobody on stage.

The show file is served on this machine with a mock team standing in for each team's
endpoint, and the script of a show day runs through the public HTTP API, as the desks would
send it: every score entered, a live demo, a benchmark run entered as the round's
benchmark values, the freeze, and the whole reveal, each elimination armed and then shown.
The report says what a live show would have shown at each step, and every refusal, so a
crew can practise and check a show file before the day. Nothing leaves the machine; the
data directory is a fresh temporary one unless ``--data`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import tempfile
from collections.abc import Callable
from typing import Any

import httpx

from showcase.bench.suites import answer_key, load_suites, sample_suites_dir
from showcase.core.showfile import Show, load_show
from showcase.models.mock.config import MockConfig

#: The stand-in teams answer quickly: a rehearsal checks the script, not the timing.
REHEARSAL_TEAM = MockConfig(ttft_ms=20, itl_ms=4, tokens=40)
DEMO_PROMPT = "Introduce your model in two sentences."
WAIT_FOR_RUN_S = 600.0


class Report:
    """What the rehearsal saw, step by step; refusals counted."""

    def __init__(self) -> None:
        self.refusals = 0
        self.step = 0

    def heading(self, text: str) -> None:
        self.step += 1
        print(f"\n{self.step}. {text}", flush=True)

    def line(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def refused(self, what: str, answer: httpx.Response) -> None:
        self.refusals += 1
        body = answer.json() if answer.headers.get("content-type", "").startswith(
            "application/json") else {}
        detail = f" ({body['detail']})" if body.get("detail") else ""
        self.line(f"REFUSED {what}: HTTP {answer.status_code} "
                  f"{body.get('error', answer.text)}{detail}")


def cmd_rehearse(args: argparse.Namespace) -> int:
    from showcase.serving import free_port, run_server

    show = load_show(args.showfile)
    data = args.data or tempfile.mkdtemp(prefix="showcase-rehearsal-")
    mocks = [(dataclasses.replace(REHEARSAL_TEAM, model=f"{t.id}-mock",
                                  accuracy=0.9 - 0.5 * i / max(1, len(show.teams))),
              free_port()) for i, t in enumerate(show.teams)]
    teams = tuple(dataclasses.replace(t, endpoint=f"http://127.0.0.1:{port}/v1",
                                      api_key_env="", model=config.model)
                  for t, (config, port) in zip(show.teams, mocks, strict=True))
    show = dataclasses.replace(show, teams=teams)
    key = answer_key(load_suites(list(show.bench.suites) or [sample_suites_dir()]))
    outcome: dict[str, int] = {}
    print(f"rehearsing {show.title_en!r} ({args.showfile}) with {len(teams)} mock teams; "
          f"data in {data}", flush=True)
    # uvicorn raises again the SIGINT that stops it once the script has run.
    with contextlib.suppress(KeyboardInterrupt):
        run_server(show, data, "127.0.0.1", 0, _rehearse_then_stop(show, outcome), mocks, key)
    refusals = outcome.get("refusals", -1)
    if refusals:
        print(f"\nrehearsal of {show.title_en!r} finished with "
              f"{'an error' if refusals < 0 else f'{refusals} refusals'}", flush=True)
        return 1
    print(f"\nrehearsal of {show.title_en!r} finished: every step was accepted", flush=True)
    return 0


def _rehearse_then_stop(show: Show, outcome: dict[str, int]
                        ) -> Callable[[str, Any], Any]:
    async def ready(url: str, app: Any) -> None:
        tokens = app.state.tokens
        # Each judge signs their own sheet with their own token, as on the day; a show that
        # shares one judge token uses it for all.
        judges = {j.id: tokens.by_judge.get(j.id) or tokens.by_role["judge"]
                  for j in show.judges}
        report = Report()
        try:
            await rehearse(url, tokens.by_role["operator"], judges, show, report)
            outcome["refusals"] = report.refusals
        finally:
            # uvicorn stops gracefully on SIGINT, as it does for Ctrl-C.
            os.kill(os.getpid(), signal.SIGINT)

    return ready


async def rehearse(url: str, operator: str, judge_tokens: dict[str, str], show: Show,
                   report: Report) -> None:
    """The script of a show day, against the server at ``url``; ``judge_tokens``: each
    judge's token, by judge id."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={
            "Authorization": f"Bearer {operator}", "X-Showcase-User": "rehearsal"}) as op:
        judges = {j: httpx.Headers({"Authorization": f"Bearer {t}", "X-Showcase-User": j})
                  for j, t in judge_tokens.items()}
        state = (await op.get("/api/state")).json()["state"]
        round_id = state["current_round"]
        await _enter_scores(op, judges, show, round_id, report)
        await _demo(op, report)
        await _bench(op, show, report)
        await _freeze_and_reveal(op, round_id, report)
        await _standings(url, round_id, report)


async def _enter_scores(op: httpx.AsyncClient, judges: dict[str, httpx.Headers], show: Show,
                        round_id: str, report: Report) -> None:
    report.heading(f"scores of round {round_id}, entered as the desks and judges would")
    count = len(show.teams)
    for criterion in show.criteria:
        low, high = criterion.scale
        entered = []
        for i, team in enumerate(show.teams):
            # Distinct values, best first in the file's order, inside the scale.
            value = round(high - (high - low) * (0.1 + 0.6 * i / max(1, count - 1)), 2)
            if criterion.source == "judges":
                for j, who in enumerate(show.judges):
                    body = {"criterion": criterion.id, "team": team.id, "judge": who.id,
                            "value": round(min(high, value + j % 3), 2)}
                    await _post(op, "/api/scores", body, report, f"{criterion.id} {team.id} "
                                f"judge {who.id}", headers=judges[who.id])
            else:
                await _post(op, "/api/scores", {"criterion": criterion.id, "team": team.id,
                                                "value": value}, report,
                            f"{criterion.id} {team.id}")
            entered.append(f"{team.id} {value:g}")
        kind = f"{len(show.judges)} judges' sheets each" if criterion.source == "judges" \
            else "values"
        report.line(f"{criterion.id} ({kind}): {', '.join(entered)}")


async def _demo(op: httpx.AsyncClient, report: Report) -> None:
    report.heading("a live demo: one prompt to every team (on air: the demo overlay)")
    answer = await _post(op, "/api/demo", {"prompt": DEMO_PROMPT, "max_tokens": 40}, report,
                         "the demo")
    if answer is None:
        return
    demo = await _until(op, "/api/demo", lambda body: (body.get("demo") or {}).get("phase")
                        in ("finished", "cancelled"))
    for team, result in ((demo or {}).get("demo") or {}).get("results", {}).items():
        metrics = result.get("metrics") or {}
        report.line(f"{team}: {result.get('status')}, first token after "
                    f"{metrics.get('ttft_ms', 0):.0f} ms, {metrics.get('output_tokens')} tokens")


async def _bench(op: httpx.AsyncClient, show: Show, report: Report) -> None:
    report.heading(f"a benchmark run, entered as the round's {show.bench.criterion} values")
    started = await _post(op, "/api/bench", {}, report, "the benchmark run")
    if started is None:
        return
    run = await _until(op, "/api/bench", lambda body: (body.get("bench") or {}).get("phase")
                       in ("finished", "cancelled", "failed"), WAIT_FOR_RUN_S)
    current = (run or {}).get("bench") or {}
    report.line(f"run {started['seq']}: {current.get('phase')}")
    applied = await _post(op, f"/api/bench/{started['seq']}/apply", {}, report,
                          "entering the run's results")
    if applied is not None:
        results = current.get("results") or {}
        report.line(", ".join(f"{t} {(r.get('score') or {}).get('value', 0):.2f}"
                              for t, r in results.items()))


async def _freeze_and_reveal(op: httpx.AsyncClient, round_id: str, report: Report) -> None:
    report.heading(f"round {round_id} frozen, then revealed step by step, as every public "
                   "screen shows it")
    if await _post(op, f"/api/rounds/{round_id}/freeze", {}, report, "the freeze") is None:
        return
    script = (await op.get("/api/reveal/script")).json()
    total = script["total"]
    for step in script["steps"]:
        n = step["n"]
        mark = ""
        if step.get("confirm"):
            if await _post(op, "/api/reveal/arm", {"to": n}, report, f"arming {n}") is None:
                return
            mark = "  (an elimination: armed, then shown)"
        if await _post(op, "/api/reveal/next", {"to": n}, report, f"step {n}") is None:
            return
        report.line(f"{n:>3}/{total}  {step.get('text')}{mark}")


async def _standings(url: str, round_id: str, report: Report) -> None:
    report.heading(f"what the public sees of round {round_id} at the end")
    async with httpx.AsyncClient(base_url=url, timeout=30) as viewer:
        state = (await viewer.get("/api/state")).json()["state"]
    rnd = next(r for r in state["rounds"] if r["id"] == round_id)
    report.line(f"phase: {rnd.get('phase')}")
    for row in (rnd.get("standings") or {}).get("rows") or []:
        report.line(f"{row.get('rank') or '-':>2}  {row['team']:<12} "
                    f"{row.get('total') or 0:>7.2f}  {row.get('status')}")


async def _post(client: httpx.AsyncClient, path: str, body: Any, report: Report, what: str,
                headers: httpx.Headers | None = None) -> dict[str, Any] | None:
    answer = await client.post(path, json=body, headers=headers)
    if answer.is_success:
        return answer.json()  # type: ignore[no-any-return]
    report.refused(what, answer)
    return None


async def _until(client: httpx.AsyncClient, path: str,
                 done: Callable[[dict[str, Any]], bool], timeout: float = 120.0
                 ) -> dict[str, Any] | None:
    """``GET path`` until ``done`` says so (None after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        body = (await client.get(path)).json()
        if done(body):
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    return None
