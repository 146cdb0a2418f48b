"""Run every study natively and with XLA capped to AVX2: publish them (`make studies`) or check
that they still say what experiments/README.md says (`make studies-check`).

XLA's CPU code sums float32 values in another order on another vector unit, and training carries
the last bits' difference into every metric; a verdict is stated only when it holds both ways
(experiments/tables.py). `native` is the machine as the environment leaves it (its XLA_FLAGS
included), `avx2` the same with `--xla_cpu_max_isa=AVX2` added.

    python experiments/studies.py publish [STUDY...]   results/<study>/ and README.md from
                                                        both runs (every study, or those named)
    python experiments/studies.py check                 regenerate both ways under
                                                        outputs/studies-check/ and compare with
                                                        the README (exit 1 on a difference)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
STUDIES = sorted(p.stem for p in HERE.glob("*.yaml"))
# What `make studies` copies from a study's folder into results/<study>/.
PUBLISHED = ("report.md", "comparison.csv", "summary.csv", "verdicts.csv")
AVX2 = "--xla_cpu_max_isa=AVX2"


def run_study(name: str, into: Path, isa: str) -> None:
    """Run study `name` into `into/name` (removed first) and write its report."""
    folder = into / name
    shutil.rmtree(folder, ignore_errors=True)
    env = dict(os.environ)
    if isa == "avx2":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {AVX2}".strip()
    began = time.monotonic()
    for command in (
        [str(BIN / "lossbench"), "-m", f"+experiment={name}", f"hydra.sweep.dir={folder}"],
        [str(BIN / "lossbench-report"), str(folder), "--quiet"],
    ):
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"studies: {name} ({isa}) failed: {' '.join(command)}")
    print(f"studies: {name} ({isa}) in {time.monotonic() - began:.0f} s", flush=True)


def publish(*names: str) -> int:
    """Run every study (or those named) both ways; results/<study>/ gets the native run's
    tables and plots and the AVX2 run's verdicts (verdicts-avx2.csv); then README.md is
    written."""
    for name in names or STUDIES:
        run_study(name, ROOT / "outputs" / "studies", "native")
        run_study(name, ROOT / "outputs" / "studies-avx2", "avx2")
        source, target = ROOT / "outputs" / "studies" / name, HERE / "results" / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in [*(source / f for f in PUBLISHED), *sorted(source.glob("*.png"))]:
            shutil.copy2(path, target / path.name)
        avx2 = ROOT / "outputs" / "studies-avx2" / name / "verdicts.csv"
        shutil.copy2(avx2, target / "verdicts-avx2.csv")
    return subprocess.call([sys.executable, str(HERE / "tables.py")])


def check() -> int:
    """Regenerate every study both ways and compare each with the README."""
    root = ROOT / "outputs" / "studies-check"
    for isa in ("native", "avx2"):
        for name in STUDIES:
            run_study(name, root / isa, isa)
    return subprocess.call(
        [sys.executable, str(HERE / "tables.py"), "--against", str(root / "native"),
         str(root / "avx2")]
    )  # fmt: skip


if __name__ == "__main__":
    command, *studies = sys.argv[1:] or [""]
    unknown = [s for s in studies if s not in STUDIES]
    if command not in ("publish", "check") or unknown or (command == "check" and studies):
        raise SystemExit("usage: python experiments/studies.py publish [STUDY...] | check "
                         f"(studies: {', '.join(STUDIES)})")  # fmt: skip
    sys.exit(publish(*studies) if command == "publish" else check())
