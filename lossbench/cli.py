"""The `lossbench` command: Hydra composes the config, the task function runs one job.

`main` installs lossbench's signal handlers before it imports anything heavy, so Ctrl-C or
SIGTERM at any moment after the interpreter reaches it ends the process with one line and 130 or
143. No framework is imported at module level, so `--help`, `--cfg` and shell completion answer
fast. Errors reach `main` (Hydra is told to re-raise them) and are printed as one line with a
non-zero exit; `debug=true` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig


def _options(group: str) -> list[Any]:
    """The YAML files of one config group, sorted by name."""
    from importlib import resources

    folder = resources.files("lossbench.conf").joinpath(group)
    return sorted((e for e in folder.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)


def loss_catalog() -> dict[str, str]:
    """Each loss variant's name and one-line description, from the registry."""
    from lossbench.variants.registry import variants

    return {name: schema.description for name, schema in variants().items()}


def _groups_help() -> str:
    """The user-facing config groups and their options (the schema/ groups are internal); the
    loss variants are the registry's."""
    from lossbench.variants.registry import variants

    options = {"loss": sorted(variants())}
    for group in ("data", "model", "trainer", "tracker", "hparams_search"):
        options[group] = [e.name.removesuffix(".yaml") for e in _options(group)]
    return "\n".join(f"{group}: {', '.join(names)}" for group, names in options.items())


def _loss_help() -> str:
    catalog = loss_catalog()
    width = max(map(len, catalog))
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in catalog.items())


class Task:
    """Hydra's task function: one job (`lossbench.jobs.run_job`). What this process's jobs share
    lives here (`lossbench.jobs.Shared`: the runners they build, the configs their sweep
    checked)."""

    def __init__(self) -> None:
        self._shared: Any = None

    @property
    def shared(self) -> Any:
        """The process's `lossbench.jobs.Shared` (made when first asked for)."""
        if self._shared is None:
            from lossbench.jobs import Shared

            self._shared = Shared()
        return self._shared

    def __call__(self, cfg: DictConfig) -> float:
        from lossbench.jobs import run_job

        return run_job(cfg, self.shared)


def run() -> None:
    """Hand `sys.argv` to Hydra, which composes the config and calls a `Task` once per job."""
    import hydra

    app = hydra.main(version_base="1.3", config_path="pkg://lossbench.conf", config_name="config")
    app(Task())()


def prepare_hydra() -> None:
    """Register the config schemas, lossbench's sweeper and launcher, and the help template's
    resolvers (before Hydra composes)."""
    from hydra.core.plugins import Plugins
    from omegaconf import OmegaConf

    from hydra_plugins.hydra_optuna_sweeper import optuna_sweeper
    from hydra_plugins.lossbench_launcher import LanesLauncher
    from hydra_plugins.lossbench_launcher.sweeper import CheckedSweeper
    from hydra_plugins.lossbench_launcher.tuning import OptunaSweeper
    from lossbench.config.compose import register_configs

    register_configs()
    # An editable install puts the plugins where Hydra's plugin scan does not look.
    Plugins.instance().register(LanesLauncher)
    Plugins.instance().register(CheckedSweeper)
    Plugins.instance().register(OptunaSweeper)
    Plugins.instance().register(optuna_sweeper.OptunaSweeper)  # hparams_search configs' path
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

    from omegaconf import OmegaConf, open_dict

    from lossbench.config.compose import compose_raw

    cfg = compose_raw(overrides, with_hydra=True)
    template = str(cfg.hydra.help.template)
    with open_dict(cfg):
        del cfg["hydra"]
    print(string.Template(template).substitute(CONFIG=OmegaConf.to_yaml(cfg)))


def _debug_requested(argv: list[str]) -> bool:
    """`debug=true` on the command line: the one switch for tracebacks (lossbench sets Hydra's
    HYDRA_FULL_ERROR itself, so that every error reaches `main`)."""
    flags = {"debug=true", "debug=True", "+debug=true"}
    return any(a in flags for a in argv)


def main() -> None:
    """Console entry point of `lossbench`."""
    from lossbench.signals import (
        Interrupted,
        ignore_signals,
        raise_on_signals,
        reraise_if_interrupted,
    )

    raise_on_signals()  # first: a signal during any import below is one line too
    try:
        try:
            code = _main(sys.argv[1:])
        except Exception as error:  # escaped `_main`'s own handling (Hydra's import, setup)
            reraise_if_interrupted(error)
            raise
    except Interrupted as stop:
        ignore_signals()  # a second signal while this is said changes nothing
        if not stop.reported:  # before training started: nothing to flush
            print(f"lossbench: {stop}", file=sys.stderr)
        code = stop.exit_code
    ignore_signals()  # the outcome is decided: the exit status must follow it
    from lossbench.process import exit_now

    exit_now(code)


def _main(argv: list[str]) -> int:
    """Run the command line `argv`; return the exit status.

    Raises:
        Interrupted: SIGINT or SIGTERM arrived (the caller says so).
    """
    import traceback
    from importlib import metadata

    from lossbench.config.compose import check_group_options, quote_setting_values
    from lossbench.errors import EXIT_ERROR, SweepIncomplete, one_line
    from lossbench.process import use_private_tempdir
    from lossbench.signals import reraise_if_interrupted

    use_private_tempdir()
    debug = _debug_requested(argv)
    # Let errors propagate out of Hydra so they are reported here, as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    prepare_hydra()
    try:
        help_overrides = _help_overrides(argv)
        if argv == ["--version"]:
            print(f"lossbench {metadata.version('lossbench')}")
        elif help_overrides is not None:
            _print_help(help_overrides)
        else:
            check_group_options([a for a in argv if not a.startswith("-")])
            sys.argv[1:] = [quote_setting_values(a) for a in argv]  # what Hydra reads
            run()
    except SystemExit as stop:  # single runs: their status is decided in the job
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    except KeyboardInterrupt:
        print("lossbench: interrupted by SIGINT", file=sys.stderr)
        return 130
    except SweepIncomplete as incomplete:
        print(f"lossbench: {incomplete}", file=sys.stderr)
        return incomplete.exit_code
    except Exception as error:
        reraise_if_interrupted(error)
        if debug:  # the traceback instead of the line; the exit status stays the same
            traceback.print_exc()
        else:
            print(f"lossbench: error: {one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    return 0
