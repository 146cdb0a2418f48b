"""Searching parameters with Optuna (lossbench.tune): the grammar, the search on a cheap
objective through a stand-in launcher, determinism, resume, failed trials and bad input; and one
real search through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from lossbench import tune
from lossbench.config.compose import compose_raw
from lossbench.errors import ConfigError, SweepJobError, one_line
from tests.conftest import TINY
from tests.test_cli import lossbench

PARSE = OverridesParser.create().parse_overrides


def _space(*arguments, params=None):
    return tune.search_space(list(arguments), params, PARSE)


def test_the_grammar_of_hydra_optuna_sweeper_maps_to_optuna_distributions():
    fixed, space = _space(
        "loss=focal", "loss.gamma=interval(0, 5)", "trainer.epochs=int(interval(1, 4))",
        "trainer.learning_rate=tag(log, interval(1e-4, 1e-1))", "loss.alpha=choice(0.25, 0.5)",
        "trainer.batch_size=range(32, 129, 32)", params={"data.noise": "range(0.1, 0.35, 0.1)"},
    )  # fmt: skip
    assert fixed == ["loss=focal"]
    od = optuna.distributions
    assert space["loss.gamma"] == od.FloatDistribution(0.0, 5.0)
    assert space["trainer.epochs"] == od.IntDistribution(1, 4)
    assert space["trainer.learning_rate"] == od.FloatDistribution(1e-4, 1e-1, log=True)
    assert space["loss.alpha"] == od.CategoricalDistribution([0.25, 0.5])
    assert space["trainer.batch_size"] == od.CategoricalDistribution([32, 64, 96, 128])
    assert space["data.noise"] == od.CategoricalDistribution([0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("argument", "key"),
    [("loss.gamma=interval(5, 1)", "hydra.sweeper.params.loss.gamma"),
     ("loss.gamma=tag(log, interval(0, 1))", "hydra.sweeper.params.loss.gamma"),
     ("loss.gamma=range(5, 1)", "hydra.sweeper.params.loss.gamma")],
)  # fmt: skip
def test_a_search_range_that_holds_nothing_is_refused_by_name(argument, key):
    with pytest.raises(ConfigError) as caught:
        _space(argument)
    assert caught.value.key == key


def _gamma(overrides: list[str]) -> float:
    return float(next(o for o in overrides if o.startswith("loss.gamma=")).partition("=")[2])


def _metric(overrides: list[str]) -> float:
    """A cheap objective with a known optimum: the recall peaks at gamma = 2."""
    return 1.0 - (_gamma(overrides) - 2.0) ** 2 / 9


class FakeLauncher:
    """Writes each job's summary as a lossbench job would; `fail_above` makes jobs error."""

    def __init__(self, folder: Path, fail_above: float = 99.0) -> None:
        self.folder, self.fail_above, self.jobs = folder, fail_above, []

    def launch(self, jobs, initial_job_idx):
        returns = []
        for i, overrides in enumerate(jobs):
            self.jobs.append(overrides)
            out = self.folder / f"{initial_job_idx + i}_job"
            out.mkdir(parents=True, exist_ok=True)
            metrics = {"minority_recall": _metric(overrides)}
            summary = {"status": "ok", "metrics": metrics}
            if _gamma(overrides) > self.fail_above:
                summary = {"status": "error", "message": "boom"}
            (out / "summary.json").write_text(json.dumps(summary))
            returns.append(SimpleNamespace(
                hydra_cfg=SimpleNamespace(hydra=SimpleNamespace(runtime=SimpleNamespace(
                    output_dir=str(out))))))  # fmt: skip
        return returns


def _search(folder, n_trials=12, fail_above=99.0, **options):
    launcher = FakeLauncher(folder, fail_above)
    settings = {"objective": "minority_recall", "n_trials": n_trials, "seeds": 2, **options}
    study = tune.search(
        tune.Options(**settings), ["loss=focal", "loss.gamma=interval(0, 5)"], folder, PARSE,
        lambda o: compose_raw(o), launcher.launch,
    )  # fmt: skip
    return study, launcher


def test_a_search_finds_a_known_optimum_and_writes_its_tables(tmp_path):
    study, launcher = _search(tmp_path / "s", n_trials=25)
    assert abs(study.best_params["loss.gamma"] - 2.0) < 0.3
    assert len(launcher.jobs) == 50 and {j[-1] for j in launcher.jobs} == {"seed=0", "seed=1"}
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert len(trials) == 25 and (trials["state"] == "COMPLETE").all()
    assert trials["mean"].tolist() == pytest.approx(
        ((trials["minority_recall_seed0"] + trials["minority_recall_seed1"]) / 2).tolist()
    )
    best = yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())
    assert best["params"] == study.best_params and best["value"] == study.best_value
    assert best["command"].startswith("lossbench loss=focal loss.gamma=")
    assert best["split"].startswith("validation")


def test_the_same_seed_gives_the_same_trials(tmp_path):
    first, _ = _search(tmp_path / "a", n_trials=6)
    second, _ = _search(tmp_path / "b", n_trials=6)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]


def test_a_resumed_study_keeps_its_trials_and_runs_only_the_rest(tmp_path):
    folder = tmp_path / "s"
    first, _ = _search(folder, n_trials=3)
    kept = [t.params for t in first.trials]
    stale = first.ask(tune.search_space(["loss.gamma=interval(0, 5)"], None, PARSE)[1])
    assert stale.number == 3  # left running, as by a process that was killed
    resumed, launcher = _search(folder, n_trials=5)
    states = [t.state.name for t in resumed.trials]
    assert [t.params for t in resumed.trials[:3]] == kept
    assert states == ["COMPLETE"] * 3 + ["FAIL"] + ["COMPLETE"] * 2  # 5 counted, 1 interrupted
    assert len(launcher.jobs) == 4 and resumed.trials[4].params not in kept
    assert pd.read_csv(folder / "trials.csv")["message"][3] == "interrupted"


def test_a_failing_trial_is_fail_and_the_study_goes_on(tmp_path):
    study, _ = _search(tmp_path / "s", n_trials=10, fail_above=3.0)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["loss.gamma"] > 3.0 for t in failed)
    assert all(t.value is None for t in failed) and len(study.trials) == 10
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert trials.loc[trials["state"] == "FAIL", "message"].str.contains("error").all()


@pytest.mark.parametrize(
    ("options", "arguments", "key"),
    [({"n_trials": 0}, [], "hydra.sweeper.n_trials"),
     ({"seeds": -1}, [], "hydra.sweeper.seeds"),
     ({"direction": "up"}, [], "hydra.sweeper.direction"),
     ({"objective": "mse"}, [], "hydra.sweeper.objective"),
     ({"sampler": "grid"}, [], "hydra.sweeper.params.loss.gamma"),
     ({"sampler": "annealing"}, [], "hydra.sweeper.sampler"),
     ({}, ["loss.gama=interval(0, 1)"], "loss.gama"),
     ({}, ["loss.alpha=interval(0.5, 1.5)"], "loss.alpha")],
)  # fmt: skip
def test_bad_input_is_refused_before_any_trial(tmp_path, options, arguments, key):
    folder = tmp_path / "s"
    settings = {"objective": "minority_recall", **options}
    with pytest.raises((ConfigError, SweepJobError)) as caught:
        tune.search(tune.Options(**settings), ["loss=focal", "loss.gamma=interval(0, 5)",
                                               *arguments], folder, PARSE, compose_raw,
                    FakeLauncher(folder).launch)  # fmt: skip
    assert key in one_line(caught.value)
    assert not folder.exists()


@pytest.mark.slow
@pytest.mark.long
def test_a_search_through_the_cli_runs_jobs_and_continues(tmp_path):
    sweep = tmp_path / "sweep"
    # The command line's form of a search, then a Lightning-Hydra-Template-style preset (its
    # _target_ is hydra-optuna-sweeper's) continuing the same study.
    args = ["hydra.sweeper.seeds=2", *TINY, "backend=jax", "trainer.epochs=1",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    first = lossbench("-m", "hydra/sweeper=optuna", "loss=focal", "loss.gamma=interval(0, 5)",
                      "loss.alpha=interval(0.05, 0.95)", "hydra.sweeper.objective=roc_auc",
                      "hydra.sweeper.n_trials=2", *args, cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "best: trial" in first.stdout
    assert len(list(sweep.glob("*/summary.json"))) == 4
    again = lossbench("hparams_search=focal_optuna", "hydra.sweeper.objective=null",
                      "optimized_metric=roc_auc", "hydra.sweeper.n_trials=3", *args,
                      cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    trials = pd.read_csv(sweep / "trials.csv")
    assert len(trials) == 3 and len(list(sweep.glob("*/summary.json"))) == 6
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 6 and (summary["status"] == "ok").all()
    command = yaml.safe_load((sweep / "best.yaml").read_text())["command"]
    assert "hparams_search=focal_optuna" in command and "hydra.mode=RUN" in command  # runs once
    report = lossbench_report(sweep)
    assert report.returncode == 0, report.stderr
    text = (sweep / "report.md").read_text()
    assert "## Search" in text and "maximize `roc_auc`" in text


def lossbench_report(folder: Path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from lossbench.report import main; main()",
                           str(folder), "--quiet"], capture_output=True, text=True)  # fmt: skip
