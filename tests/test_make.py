"""The Makefile's targets that delete: they refuse a missing or unknown NAME before deleting
anything, and delete only inside their own folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The Makefile beside two studies, each with an earlier result to keep."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    for name in ("alpha", "beta"):
        (tmp_path / "experiments").mkdir(exist_ok=True)
        (tmp_path / "experiments" / f"{name}.yaml").write_text("# @package _global_\n")
        (tmp_path / "outputs" / "studies" / name).mkdir(parents=True)
        (tmp_path / "outputs" / "studies" / name / "kept").write_text("an earlier study")
    return tmp_path


def _kept(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("kept"))


@pytest.mark.parametrize("name", [None, "", "gamma", "../..", "alpha beta", "*"])
def test_a_missing_or_unknown_study_name_is_refused_before_anything_is_deleted(project, name):
    before = _kept(project)
    args = ["make", "--no-print-directory", "study"] + ([] if name is None else [f"NAME={name}"])
    proc = subprocess.run(args, cwd=project, capture_output=True, text=True)
    assert proc.returncode == 2
    expected = (f"make: invalid value for `NAME`: expected one of alpha beta, received "
                f"'{name or ''}'")  # fmt: skip
    assert proc.stderr.splitlines()[0] == expected
    assert _kept(project) == before and not (project / ".venv").exists()


def test_a_known_study_deletes_only_its_own_folder(project):
    proc = subprocess.run(["make", "-n", "--no-print-directory", "study", "NAME=alpha"],
                          cwd=project, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    deletions = [line for line in proc.stdout.splitlines() if line.startswith("rm ")]
    assert deletions == ["rm -rf outputs/studies/alpha"]
