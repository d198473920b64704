"""The house's layers, drawn from the code's own imports (docs/architecture.md).

Every import counts, including those inside functions and under TYPE_CHECKING: an arrow
hidden that way is still an arrow in the design.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: showcase's layers, lowest first (the first part of a module's name under showcase/). A
#: module may import its own layer and the layers below, never one above.
#: showcase/__init__.py holds __version__ and nothing else, so it sits with the core.
SHOWCASE_LAYERS = (("core", ""), ("log",), ("runtime",), ("models",), ("voting",), ("bench",),
                   ("provenance",), ("server",),
                   ("cli", "__main__", "serving", "archive", "verify", "preflight", "rehearse"))
#: The console's: the model and client, then widgets, then screens, then the app.
TUI_LAYERS = (("client", "model", "wording"), ("desk", "widgets"), ("screens",), ("app", ""))

#: The one module allowed to use another package's private internals, and why it may
#: (its docstring says so; tests/test_frames.py fails when the dependency changes).
PRIVATE_USE = {"showcase.server.frames"}
PRIVATE_PACKAGES = ("uvicorn.protocols", "websockets.legacy")


def _modules(folder: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, absolute; relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _private_names(path: Path) -> list[str]:
    """``from module import _name``: a private name used from outside its module (another
    package's, or another of our own modules': what two modules share is public there)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "__future__":
                continue
            found += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def _layer(module: str, layers: tuple[tuple[str, ...], ...]) -> int:
    part = module.split(".")[1] if module.count(".") else ""
    for rank, names in enumerate(layers):
        if part in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add its folder to the layers in this test "
                         "and to docs/architecture.md")


def _graph(folder: str) -> dict[str, set[str]]:
    mods = _modules(folder)
    graph = {}
    for name, path in mods.items():
        targets = set()
        for target in _imports(name, path):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _back_arrows(folder: str, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    wrong = []
    for module, targets in _graph(folder).items():
        for target in targets:
            if _layer(target, layers) > _layer(module, layers):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("folder", ["showcase", "tui"])
def test_architecture_has_no_import_cycle(folder: str) -> None:
    assert _cycles(_graph(folder)) == []


def test_architecture_showcase_arrows_point_down() -> None:
    assert _back_arrows("showcase", SHOWCASE_LAYERS) == []


def test_architecture_console_arrows_point_down_and_never_into_the_server() -> None:
    assert _back_arrows("tui", TUI_LAYERS) == []
    for name, path in _modules("tui").items():
        server = sorted(t for t in _imports(name, path) if t.split(".")[0] == "showcase")
        assert server == [], f"{name} imports the server's internals: {server}"


def test_architecture_core_is_pure() -> None:
    """Importing every core module loads no server, log, network or async machinery."""
    core = sorted(name for name in _modules("showcase") if name.startswith("showcase.core"))
    code = ("import sys\n"
            + "".join(f"import {name}\n" for name in core)
            + "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, timeout=60).stdout.split())
    forbidden = {"httpx", "httpcore", "asyncio", "sqlite3", "_sqlite3", "redis", "starlette",
                 "uvicorn", "websockets", "socket", "ssl", "textual", "showcase_tui"}
    assert sorted(loaded & forbidden) == []
    assert len(core) >= 8, core  # the test sees the core's modules (events, state, ...)


def test_architecture_private_internals_stay_in_one_module() -> None:
    offenders = []
    for folder in ("showcase", "tui"):
        for name, path in _modules(folder).items():
            if name in PRIVATE_USE:
                continue
            private = [t for t in _imports(name, path) if t.startswith(PRIVATE_PACKAGES)]
            offenders += [f"{name}: {t}" for t in sorted(private + _private_names(path))]
    assert offenders == []


def test_architecture_server_starts_without_the_statistics_stack() -> None:
    """A server loads scipy on its first tally, not at start: importing it takes about a
    second, and a node restarted in the middle of a show must be back at once."""
    code = ("import sys, showcase.cli, showcase.server.app\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, timeout=60).stdout.split())
    assert "starlette" in loaded  # the test sees what a server loads
    assert sorted(loaded & {"scipy", "jax", "arena_rank", "pandas", "playwright"}) == []
