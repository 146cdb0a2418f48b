"""Small modules and functions a newcomer reads in one sitting: no module over 400 lines and no
function over 60 in lossbench/, hydra_plugins/ and bench/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def sources() -> list[Path]:
    return sorted(
        p for top in ("lossbench", "hydra_plugins", "bench") for p in (ROOT / top).rglob("*.py")
    )


def too_long(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    found = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        found.append(f"{where}: {len(text.splitlines())} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            if lines > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_no_module_or_function_is_too_long():
    assert [problem for path in sources() for problem in too_long(path)] == []


def test_the_size_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{k} = {k}" for k in range(MAX_FUNCTION_LINES))
    path = tmp_path / "long.py"
    path.write_text(f"def long():\n{body}\n")
    assert too_long(path, tmp_path) == [f"long.py:1 long: {MAX_FUNCTION_LINES + 1} lines"]


def test_lossbenchs_hydra_plugins_stay_thin():
    """What no stock Hydra plugin does (check every job first, seeds as lanes) is a thin layer
    over Hydra's basic sweeper and launcher, under 150 lines; the Optuna sweeper hands Hydra's
    parser, composer and launcher to lossbench.tune, under 70 with its import-path alias."""
    plugins = ROOT / "hydra_plugins"
    optuna = [plugins / "lossbench_launcher" / "tuning.py", *plugins.glob("hydra_optuna_sweeper/*")]
    lines = {p: len(p.read_text().splitlines()) for p in plugins.rglob("*.py")}
    assert sum(n for p, n in lines.items() if p not in optuna) < 150
    assert sum(lines[p] for p in optuna) < 70
