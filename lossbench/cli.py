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
from omegaconf import DictConfig, OmegaConf

from lossbench.config import register_configs, validate
from lossbench.errors import LossbenchError

EXIT_ERROR = 2


def _options(group: str) -> list[Any]:
    """The YAML files of one config group, sorted by name."""
    folder = resources.files("lossbench.conf").joinpath(group)
    return sorted((e for e in folder.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)


def loss_catalog() -> dict[str, str]:
    """Each loss config's name and one-line description, read from conf/loss/*.yaml."""
    return {
        e.name.removesuffix(".yaml"): str((yaml.safe_load(e.read_text()) or {}).get("description"))
        for e in _options("loss")
    }


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


def _write_error_summary(out_dir: Path, error: BaseException) -> None:
    from lossbench.tables import write_summary

    out_dir.mkdir(parents=True, exist_ok=True)
    write_summary(
        out_dir / "summary.json",
        {"status": "error", "error_type": type(error).__name__, "message": one_line(error)},
    )


@hydra.main(version_base="1.3", config_path="pkg://lossbench.conf", config_name="config")
def run(cfg: DictConfig) -> float:
    """Hydra task function: validate, train, write tables, print the summary."""
    from lossbench.console import print_summary, progress_bar
    from lossbench.experiment import run_experiment

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        typed = validate(cfg)
        with progress_bar(f"{typed.loss.name} seed {typed.seed}", typed.trainer.progress) as bar:
            summary = run_experiment(typed, out_dir, bar)
    except Exception as error:
        # The folder must not look like a success: it says what went wrong instead.
        _write_error_summary(out_dir, error)
        if cfg.debug or HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a sweep goes on with its other jobs; Hydra reports the failure at the end
        print(f"lossbench: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    print_summary(summary, out_dir)
    return float(summary["final_loss"])


def one_line(error: BaseException) -> str:
    """A one-line message for any error Hydra, OmegaConf or lossbench raises."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, LossbenchError):
        return str(error)
    if isinstance(error, MissingConfigException) and error.options is not None:
        group = (error.missing_cfg_file or "").split("/")[0] or "config"
        wanted = (error.missing_cfg_file or "").split("/")[-1]
        return (
            f"invalid value for `{group}`: expected one of {', '.join(error.options)}, "
            f"received {wanted!r}"
        )
    cause = error if isinstance(error, OmegaConfBaseException) else error.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        msg = str(getattr(cause, "msg", "") or cause).splitlines()[0]
        return f"invalid value for `{cause.full_key}`: {msg}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' '.join(lines) if lines else 'no message'}"


def _debug_requested(argv: list[str]) -> bool:
    flags = {"debug=true", "debug=True", "+debug=true"}
    return any(a in flags for a in argv) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def main() -> None:
    """Console entry point of `lossbench`."""
    debug = _debug_requested(sys.argv[1:])
    # Let errors propagate out of Hydra so they are reported here, as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    register_configs()
    for name, fn in (("lossbench_losses", _loss_help), ("lossbench_groups", _groups_help)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    try:
        run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        if debug:
            raise
        print(f"lossbench: error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
