"""Imports flow one way: entry points on top, then jobs, the sweep, the run, the trainer, the
config, data, losses, the store and the foundation. This test reads every import of `lossbench/`
and `hydra_plugins/` (at any depth: inside functions and `TYPE_CHECKING` blocks too) and fails on
an import cycle or an import from a lower layer up to a higher one."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top, one folder per layer where it can be; a module belongs to the layer of the
# longest prefix of its name listed here. A module may import its own layer's modules (without a
# cycle) and any lower layer's.
LAYERS = [
    ("foundation", ["lossbench.errors", "lossbench.bounds", "lossbench.process",
                    "lossbench.signals", "lossbench.user_code",
                    "lossbench.config", "lossbench.config.schema", "lossbench.config.plugins"]),
    ("store", ["lossbench.store"]),
    ("losses", ["lossbench.losses"]),
    ("data", ["lossbench.data"]),
    ("config", ["lossbench.variants", "lossbench.config.checks", "lossbench.config.compose",
                "lossbench.config.memory"]),
    ("trainer", ["lossbench.trainer"]),
    ("run", ["lossbench.run"]),
    ("sweep", ["lossbench.sweep", "lossbench.tracking", "lossbench.console"]),
    ("jobs", ["lossbench.jobs", "lossbench.tune"]),
    ("entry points", ["hydra_plugins", "lossbench.sweep.cli", "lossbench.check",
                      "lossbench.cli"]),
]  # fmt: skip
PACKAGE = "lossbench"  # the empty package module itself: importing it imports nothing


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for top in ("lossbench", "hydra_plugins")
        for p in (ROOT / top).rglob("*.py")
    }


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports: `from a.b import c` imports `a.b.c` when that is a
    module, else `a.b`; a package's `__init__` counts as the package's module, and importing a
    module imports its packages' (as Python runs them)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            while target:
                inside = name.startswith(target + ".")  # its own package is already running
                if target in known and target not in (name, PACKAGE) and not inside:
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def layer_of(name: str) -> int:
    found = [(len(p), index) for index, (_, prefixes) in enumerate(LAYERS) for p in prefixes
             if name == p or name.startswith(p + ".")]  # fmt: skip
    if not found:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")
    return max(found)[1]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, name, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_the_checks_find_a_cycle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("lossbench.errors") < layer_of("lossbench.cli")
    assert layer_of("lossbench.config") < layer_of("lossbench.config.checks")  # longest prefix
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("lossbench.nowhere")


def packages() -> set[str]:
    """Every package of lossbench's code (a folder with an `__init__.py`)."""
    return {module_name(p.parent) for p in (ROOT / "lossbench").rglob("__init__.py")}


def test_every_package_is_in_a_layer_and_ships_with_the_project():
    import tomllib

    shipped = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert packages() - shipped == set()
    for name in packages() - {PACKAGE}:
        layer_of(name)


def test_the_tests_mirror_the_packages_folders():
    folders = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists()}
    code = {name.split(".")[1] for name in packages() if name.count(".") == 1}
    assert folders - {"hydra_plugins", "pinned"} == code
    assert len([p for p in (ROOT / "lossbench").glob("*.py") if p.name != "__init__.py"]) <= 8


@pytest.mark.long
@pytest.mark.parametrize(
    "overrides",
    [["loss=focal"], ["loss=grouped_dynamic", "scale.epsilon=1e-6", "backend=jax"]],
)
def test_a_runs_path_enters_each_module_once_outside_its_loops(overrides, tmp_path):
    """`python -m tests.module_walk`: no module is entered again after the run has left it
    (docs/architecture.md, "The path of one run"). In `make test-long`: each run is traced
    call by call, about 15 s on 2 cores."""
    backend = "jax" if "backend=jax" in overrides else "tensorflow"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.module_walk", *overrides, "trainer.epochs=1",
         "data.n_samples=2000", "trainer.progress=false", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "KERAS_BACKEND": backend},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "steps.csv").is_file(), proc.stderr
    walk = dict(line.split(": ", 1) for line in proc.stderr.splitlines()[-5:])
    assert walk["re-entered after being left, outside the loops"] == "0 times in 0 modules: none"
    assert walk["path outside the loops"].startswith("cli > config.compose"), walk


def _module(name: str, source: str, **names: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(names)
    exec(source, module.__dict__)
    return module


def test_the_walk_counts_a_module_that_goes_down_twice_and_not_a_leaf():
    from tests.module_walk import Walk

    leaf = _module("lossbench.fake_leaf", "def value():\n    return 1\n")
    mid = _module("lossbench.fake_mid", "def work():\n    return leaf.value()\n", leaf=leaf)
    top = _module(
        "lossbench.fake_top",
        "def run():\n    mid.work()\n    leaf.value()\n    mid.work()\n",
        mid=mid,
        leaf=leaf,
    )
    walk = Walk()
    sys.setprofile(walk)
    try:
        top.run()
    finally:
        sys.setprofile(None)
    lines = dict(line.split(": ", 1) for line in walk.lines())
    assert lines["path outside the loops"] == "fake_top > fake_mid"
    assert lines["re-entered after being left, outside the loops"] == (
        "1 times in 1 modules: fake_mid x1"
    )
