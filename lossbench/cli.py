"""The `lossbench` command: Hydra composes the config, the task function runs one experiment.

No framework is imported at module level, so `--help`, `--cfg` and shell completion answer fast.
Errors reach `main` (Hydra is told to re-raise them) and are printed as one line with a non-zero
exit; `debug=true` or HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.config import Config, compose_raw, register_configs, validate
from lossbench.errors import one_line
from lossbench.registry import variants

# Exit statuses: 0 ok; 1 a sweep with jobs that did not finish; 2 bad input or an error;
# 3 a single run that diverged; 128 + signal number when interrupted (130 SIGINT, 143 SIGTERM).
EXIT_SWEEP_FAILED = 1
EXIT_ERROR = 2
EXIT_DIVERGED = 3


def _options(group: str) -> list[Any]:
    """The YAML files of one config group, sorted by name."""
    folder = resources.files("lossbench.conf").joinpath(group)
    return sorted((e for e in folder.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)


def loss_catalog() -> dict[str, str]:
    """Each loss variant's name and one-line description, from the registry."""
    return {name: schema.description for name, schema in variants().items()}


def _groups_help() -> str:
    """The user-facing config groups and their options (the schema/ groups are internal)."""
    return "\n".join(
        f"{group}: {', '.join(e.name.removesuffix('.yaml') for e in _options(group))}"
        for group in ("loss", "data", "model", "trainer")
    )


def _loss_help() -> str:
    catalog = loss_catalog()
    width = max(map(len, catalog))
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in catalog.items())


@hydra.main(version_base="1.3", config_path="pkg://lossbench.conf", config_name="config")
def run(cfg: DictConfig) -> float:
    """Hydra task function: validate, train, write tables, print the summary."""
    from lossbench.console import progress_bar
    from lossbench.runs import run_experiment
    from lossbench.signals import Interrupted

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        typed = start_job(cfg, out_dir, multirun)
        if not isinstance(typed, Config):
            return typed
        with progress_bar(f"{typed.loss.name} seed {typed.seed}", typed.trainer.progress) as bar:
            summary = run_experiment(typed, out_dir, bar)
    except Interrupted as stop:
        report_interrupted(stop, [out_dir])
        raise
    except Exception as error:
        return job_failed(error, cfg, out_dir, multirun)
    return job_finished(summary, out_dir, multirun)


def start_job(cfg: DictConfig, out_dir: Path, multirun: bool) -> Config | float:
    """The job's validated config, or, when a resumed sweep already holds this job's finished
    result in `out_dir`, its final loss (the folder is left as it is)."""
    typed = validate(cfg)
    if multirun and typed.resume:
        kept = finished_result(out_dir, cfg)
        if kept is not None:
            return kept
        write_job_record(out_dir, cfg)
    return typed


def report_interrupted(stop: BaseException, out_dirs: list[Path]) -> None:
    """Say where an interrupted job's tables are (once: the CLI does not repeat it)."""
    for out_dir in out_dirs:
        print(
            f"lossbench: {stop}: tables written through the last completed step in {out_dir}",
            file=sys.stderr,
        )
    stop.reported = True  # type: ignore[attr-defined]


def job_failed(error: Exception, cfg: DictConfig, out_dir: Path, multirun: bool) -> float:
    """Make the folder say what went wrong; a sweep goes on (NaN), a single run exits 2 with one
    line, and `debug=true` re-raises."""
    from lossbench.tables import write_error_summary

    # The folder must not look like a success: it says what went wrong instead.
    write_error_summary(out_dir, error, cfg)
    if cfg.debug:
        raise error
    if multirun:
        # The folder says what went wrong; the sweep goes on with its other jobs and the
        # CLI names the failed ones from their folders at the end.
        return float("nan")
    print(f"lossbench: error: {one_line(error)}", file=sys.stderr)
    sys.exit(EXIT_ERROR)


def job_finished(summary: dict[str, Any], out_dir: Path, multirun: bool) -> float:
    """Print a trained job's summary; a single run that diverged exits 3. Returns the final
    loss (NaN when no step finished)."""
    from lossbench.console import print_summary
    from lossbench.signals import ignore_signals

    if not multirun:
        ignore_signals()  # the folder holds the outcome; the exit status must follow it
    print_or_drop(print_summary, summary, out_dir)
    if summary["status"] == "diverged":
        print(f"lossbench: {summary['message']}", file=sys.stderr)
        if not multirun:
            sys.exit(EXIT_DIVERGED)
    final = summary["final_loss"]
    return float("nan") if final is None else float(final)


def print_or_drop(fn: Any, *args: Any) -> None:
    """Print to stdout, or nothing once its reader has gone (`lossbench ... | head`): the run's
    outcome and exit status do not depend on who reads the console."""
    try:
        fn(*args)
        sys.stdout.flush()
    except (BrokenPipeError, SystemExit):  # rich exits 1 on a closed pipe
        # Python would report the closed pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _result_config(cfg: DictConfig) -> dict[str, Any]:
    from lossbench.sweeps import NOT_PART_OF_THE_RESULT

    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    return {k: v for k, v in plain.items() if k not in NOT_PART_OF_THE_RESULT and k != "hydra"}


def finished_result(job: Path, cfg: DictConfig) -> float | None:
    """The final loss of a job folder that finished with this config, else None."""
    import json

    try:
        summary = json.loads((job / "summary.json").read_text())
        saved = OmegaConf.load(job / ".hydra" / "config.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(summary, dict) or summary.get("status") != "ok":
        return None
    if _result_config(saved) != _result_config(cfg):  # type: ignore[arg-type]
        return None
    final = summary.get("final_loss")
    return float("nan") if final is None else float(final)


def write_job_record(job: Path, cfg: DictConfig) -> None:
    """The job's config and overrides in .hydra/, as Hydra writes them (a resumed sweep tells
    Hydra not to, so that finished jobs' files stay untouched)."""
    from lossbench.tables import atomic_write_text

    record = job / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record / "config.yaml", OmegaConf.to_yaml(cfg))
    overrides = list(HydraConfig.get().overrides.task)
    atomic_write_text(record / "overrides.yaml", yaml.safe_dump(overrides))


def report_sweep(sweep: Path, baseline: str | None = None) -> int:
    """Aggregate a finished sweep from its folders, print the comparison, name failed jobs.

    Returns:
        The exit status: EXIT_SWEEP_FAILED when any job did not finish, else 0.
    """
    from lossbench.console import headline_metrics, print_sweep
    from lossbench.sweeps import aggregate, describe_verdicts, failed_jobs, variant_keys

    if not sweep.is_dir():
        return 0
    summary, comparison, verdicts = aggregate(sweep, baseline)
    if summary.empty:
        return 0
    sentences = describe_verdicts(verdicts, headline_metrics(list(comparison.columns)))
    title = f"lossbench sweep: {sweep}"
    print_or_drop(print_sweep, comparison, variant_keys(summary), sentences, title)
    tables = ", ".join(
        str(sweep / name) for name in ("summary.csv", "comparison.csv", "verdicts.csv")
    )
    print_or_drop(print, f"tables: {tables}")
    failed = failed_jobs(summary)
    if failed.empty:
        return 0
    names = "; ".join(
        f"{r.job} ({r.status}{': ' + str(r.message) if str(r.message) not in ('', 'nan') else ''})"
        for r in failed.itertuples()
    )
    print(
        f"lossbench: {len(failed)} of {len(summary)} jobs did not finish: {names}", file=sys.stderr
    )
    return EXIT_SWEEP_FAILED


def prepare_hydra() -> None:
    """Register the config schemas and the help template's resolvers (before Hydra composes)."""
    register_configs()
    for name, fn in (("lossbench_losses", _loss_help), ("lossbench_groups", _groups_help)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def _help_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a plain `lossbench [OVERRIDE ...] --help`, else None (Hydra answers)."""
    if "--help" not in argv and "-h" not in argv:
        return None
    rest = [a for a in argv if a not in ("--help", "-h")]
    return None if any(a.startswith("-") for a in rest) else rest


def _print_help(overrides: list[str]) -> None:
    """Print the app help exactly as Hydra would for conf/config.yaml's template.

    Hydra builds its two config-group listings before filling any template, copying the whole
    config store once per group (about a second); the template here never shows them.
    """
    import string

    cfg = compose_raw(overrides, with_hydra=True)
    template = str(cfg.hydra.help.template)
    with open_dict(cfg):
        del cfg["hydra"]
    print(string.Template(template).substitute(CONFIG=OmegaConf.to_yaml(cfg)))


def _debug_requested(argv: list[str]) -> bool:
    flags = {"debug=true", "debug=True", "+debug=true"}
    return any(a in flags for a in argv) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def _multirun(argv: list[str]) -> bool:
    return "-m" in argv or "--multirun" in argv


def _plain_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a plain `lossbench [-m] OVERRIDE ...`, else None (Hydra's own flags)."""
    rest = [a for a in argv if a not in ("-m", "--multirun")]
    return None if any(a.startswith("-") for a in rest) else rest


def main() -> None:
    """Console entry point of `lossbench`."""
    from lossbench import pool
    from lossbench.launch import claim, plan
    from lossbench.process import exit_now
    from lossbench.signals import Interrupted, raise_on_signals
    from lossbench.sweeps import preload

    raise_on_signals()
    argv = sys.argv[1:]
    debug = _debug_requested(argv)
    # Let errors propagate out of Hydra so they are reported here, as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    prepare_hydra()

    code = 0
    failure = ""
    sweep: Path | None = None
    baseline: str | None = None
    lock = None
    help_overrides = _help_overrides(argv)
    try:
        if help_overrides is not None:
            _print_help(help_overrides)
        else:
            overrides = _plain_overrides(argv)
            if overrides is not None:
                # The folder is decided (and every job checked) here, then pinned for Hydra.
                chosen = plan(overrides, _multirun(argv))
                lock = claim(chosen)
                if chosen.pool is not None:  # its workers import the framework meanwhile
                    pool.prestart(*chosen.pool, chosen.backend, meanwhile=preload)
                sweep = chosen.folder if _multirun(argv) else None
                baseline = chosen.baseline
                sys.argv = [sys.argv[0], *argv, *chosen.pinned]
            run()
    except SystemExit as stop:  # single runs: their status is decided in `run`
        code = stop.code if isinstance(stop.code, int) else EXIT_ERROR
    except Interrupted as stop:
        if not stop.reported:  # before training started: nothing to flush
            print(f"lossbench: {stop}", file=sys.stderr)
        code = stop.exit_code
    except KeyboardInterrupt:
        print("lossbench: interrupted by SIGINT", file=sys.stderr)
        code = 130
    except Exception as error:
        if debug:
            raise
        failure = f"lossbench: error: {one_line(error)}"
        code = EXIT_ERROR
    finally:
        pool.shutdown()
        if lock is not None:
            Path(lock.name).unlink(missing_ok=True)
            lock.close()
    # A sweep's own verdict (some jobs did not finish) replaces a plain error or success; an
    # interruption keeps its 130/143.
    sweep_code = report_sweep(sweep, baseline) if sweep is not None else 0
    if failure and not sweep_code:  # a sweep's failed jobs are named by its report instead
        print(failure, file=sys.stderr)
    if sweep_code and code in (0, EXIT_ERROR):
        code = sweep_code
    exit_now(code)
