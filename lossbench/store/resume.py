"""Which job folders are a sweep's own, and which finished results a resumed sweep may reuse.

A job is known by its overrides as a set (`job_key`): `loss=a seed=1` and `seed=1 loss=a` are one
job, whatever folder Hydra gave it. The sweeper writes the sweep's plan (`jobs.yaml`: every job's
overrides) before the first job starts; the sweep's tables hold the folders of planned jobs only,
and name the others (another sweep's jobs, left in the folder). A resumed job reuses a finished
folder with its key, its config and the same input files (`loss.target`, `data.path`), wherever
the folder is, moving it to the job's own; anything else runs again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lossbench.store.files import atomic_write_text
from lossbench.store.run_folder import RunFolder, Status

PLAN = "jobs.yaml"
RECORD = ".hydra"
INPUTS = "inputs.yaml"
# Keys that do not change what a job computes: not part of its identity or its result.
NOT_PART_OF_THE_RESULT = ("resume", "debug", "optimized_metric", "tracker")

JobKey = tuple[tuple[str, str], ...]


def override_pair(item: str) -> tuple[str, str] | None:
    """An override as (key, value), `+`/`~` stripped and Hydra's escapes undone; None for keys
    that are not part of a job's result (`resume`, `debug`)."""
    key, _, value = str(item).partition("=")
    key = key.lstrip("+~")
    # Hydra writes a sweep job's value with its special characters escaped (`a.py\:Name`).
    if key.partition(".")[0] in NOT_PART_OF_THE_RESULT:
        return None
    return key, re.sub(r"\\(.)", r"\1", value)


def job_key(overrides: Iterable[str]) -> JobKey:
    """A job's identity: its overrides as a sorted set of (key, value)."""
    return tuple(sorted(p for p in map(override_pair, overrides) if p is not None))


def read_overrides(job: Path) -> list[str]:
    """The job's overrides from its record (.hydra/overrides.yaml); [] when it has none.

    Raises:
        ValueError: the file exists and is not a YAML list (its reason in the message).
    """
    path = job / RECORD / "overrides.yaml"
    if not path.exists():
        return []
    try:
        items = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(" ".join(str(error).split())[:200]) from None
    if items is not None and not isinstance(items, list):
        raise ValueError(f"a list of overrides, found a {type(items).__name__}")
    return [str(item) for item in items or []]


def write_plan(sweep: Path, jobs: Sequence[Sequence[str]]) -> None:
    """Record the sweep's jobs (their overrides) in `sweep/jobs.yaml`."""
    sweep.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep / PLAN, yaml.safe_dump({"jobs": [list(job) for job in jobs]}))


def planned_keys(sweep: Path) -> set[JobKey] | None:
    """The keys of the jobs the sweep in `sweep` planned; None without a readable plan."""
    try:
        plan = yaml.safe_load((sweep / PLAN).read_text())
        return {job_key(job) for job in plan["jobs"]}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return None


def _key_or_none(job: Path) -> JobKey | None:
    try:
        return job_key(read_overrides(job))
    except ValueError:
        return None


def sweep_jobs(sweep: Path, folders: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(the sweep's own job folders, the others): with a plan, a folder is the sweep's when its
    key is planned, the most recently written of those with the same key; without one, all."""
    planned = planned_keys(sweep)
    if planned is None:
        return list(folders), []
    newest: dict[JobKey, Path] = {}
    for folder in folders:
        key = _key_or_none(folder)
        if key in planned and (key not in newest or _written(folder) > _written(newest[key])):
            newest[key] = folder  # type: ignore[index]
    own = set(newest.values())
    return [f for f in folders if f in own], [f for f in folders if f not in own]


def _written(folder: Path) -> float:
    try:
        return (folder / "summary.json").stat().st_mtime
    except OSError:
        return 0.0


# ---- the input files a job read, and whether they are the same now


def _module_file(module: str) -> Path | None:
    """The source file of `package.module` (found without importing anything)."""
    from lossbench.user_code import module_spec

    spec = module_spec(module)
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


def input_files(cfg: Any) -> dict[str, Path]:
    """The files a job's results depend on besides its config: the file of every `*.target`
    (`file.py:Name`, or `package.module:Name`'s module file) and a table's `data.path`, by
    config key."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    found: dict[str, Path] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
        elif isinstance(node, str) and prefix.split(".")[-1] == "target" and ":" in node:
            location = node.rpartition(":")[0]
            path = (
                Path(location).expanduser() if location.endswith(".py") else _module_file(location)
            )
            if path is not None:
                found[prefix] = path

    walk({k: v for k, v in plain.items() if k != "hydra"}, "")  # type: ignore[union-attr]
    data = plain.get("data") or {}  # type: ignore[union-attr]
    if data.get("source") == "table" and data.get("path"):
        found["data.path"] = Path(data["path"]).expanduser()
    return found


def fingerprints(cfg: Any) -> dict[str, str]:
    """SHA-256 of each input file's bytes, by config key ("missing" for a file not there)."""
    out = {}
    for key, path in sorted(input_files(cfg).items()):
        try:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            out[key] = "missing"
    return out


def write_inputs(job: Path, cfg: Any) -> None:
    """Record the input files' fingerprints in the job's record."""
    atomic_write_text(job / RECORD / INPUTS, yaml.safe_dump(fingerprints(cfg)))


def changed_inputs(job: Path, cfg: Any) -> list[str]:
    """The config keys whose input file changed since `job` ran (all of them when the job has
    no record of its inputs)."""
    now = fingerprints(cfg)
    try:
        then = yaml.safe_load((job / RECORD / INPUTS).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        then = None
    if not isinstance(then, dict):
        return sorted(now)
    return sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))


# ---- reusing a finished job


def _result_config(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    return {k: v for k, v in plain.items() if k not in NOT_PART_OF_THE_RESULT and k != "hydra"}


def finished_with(job: Path, cfg: Any) -> bool:
    """Whether `job` finished (status ok) with this config and the same input files."""
    from omegaconf import OmegaConf

    if RunFolder(job).read().get("status") != Status.ok:
        return False
    try:
        saved = OmegaConf.load(job / RECORD / "config.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return _result_config(saved) == _result_config(cfg) and not changed_inputs(job, cfg)


@dataclass(frozen=True)
class Reuse:
    """What a resumed sweep does with one job: keep the finished result its folder now holds,
    or run the job, with `why` it runs again when something of it was there."""

    kept: bool
    why: str = ""


def reuse(out_dir: Path, sweep: Path, overrides: Sequence[str], cfg: Any) -> Reuse:
    """Make `out_dir` hold this job's finished result when the sweep folder has one: in
    `out_dir` itself, or in another folder with the job's key, moved here. A different job's
    folder in `out_dir` is moved aside first (`<name>.moved-N`), never overwritten.

    Returns:
        Whether a result is kept; if not, why the job runs again (empty when nothing of it was
        there).
    """
    key = job_key(overrides)
    here = _key_or_none(out_dir) if (out_dir / RECORD).exists() else None
    if here == key and finished_with(out_dir, cfg):
        return Reuse(kept=True)
    if (out_dir / "summary.json").exists() and here != key:
        _move_aside(out_dir)
    for folder in sorted(p.parent for p in sweep.rglob("summary.json")):
        if folder != out_dir and _key_or_none(folder) == key and finished_with(folder, cfg):
            if out_dir.exists():
                _empty_out(out_dir)
            folder.rename(out_dir)
            return Reuse(kept=True)
    if here == key:
        changed = changed_inputs(out_dir, cfg) if (out_dir / RECORD / INPUTS).exists() else []
        if changed:
            files = input_files(cfg)
            named = ", ".join(f"{k} ({files[k]})" if k in files else k for k in changed)
            return Reuse(kept=False, why=f"the file of {named} changed since the job ran")
    return Reuse(kept=False)


def _move_aside(folder: Path) -> Path:
    n = 1
    while (aside := folder.with_name(f"{folder.name}.moved-{n}")).exists():
        n += 1
    folder.rename(aside)
    folder.mkdir()
    return aside


def _empty_out(folder: Path) -> None:
    """Remove `folder` when it holds nothing of a job's (Hydra made it for this job)."""
    leftovers = [p for p in folder.iterdir() if p.name != RECORD]
    if leftovers:
        _move_aside(folder)
    import shutil

    shutil.rmtree(folder)
