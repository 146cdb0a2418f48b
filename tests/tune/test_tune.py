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

from lossbench.config.compose import compose_raw
from lossbench.errors import ConfigError, SweepIncomplete, SweepJobError, one_line
from lossbench.tune import options as tune_options
from lossbench.tune import search as tune_search
from lossbench.tune import space as tune_space
from tests.conftest import TINY, TINY_TRAINING
from tests.test_cli import lossbench

PARSE = OverridesParser.create().parse_overrides


def _space(*arguments, params=None):
    return tune_space.search_space(list(arguments), params, PARSE)


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
            # ece falls as gamma grows: against minority_recall, a trade-off with a Pareto front.
            metrics = {"minority_recall": _metric(overrides), "ece": 0.2 / (1 + _gamma(overrides))}
            summary = {"status": "ok", "metrics": metrics}
            if _gamma(overrides) > self.fail_above:
                summary = {"status": "error", "message": "boom"}
            (out / "summary.json").write_text(json.dumps(summary))
            returns.append(SimpleNamespace(
                hydra_cfg=SimpleNamespace(hydra=SimpleNamespace(runtime=SimpleNamespace(
                    output_dir=str(out))))))  # fmt: skip
        return returns


def _search(folder, n_trials=12, fail_above=99.0, arguments=None, **options):
    launcher = FakeLauncher(folder, fail_above)
    settings = {"objective": "minority_recall", "n_trials": n_trials, "seeds": 2, **options}
    study = tune_search.search(
        tune_options.Options(**settings),
        ["loss=focal", "loss.gamma=interval(0, 5)"] if arguments is None else arguments,
        folder, PARSE, lambda o: compose_raw(o), launcher.launch,
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
    stale = first.ask(tune_space.search_space(["loss.gamma=interval(0, 5)"], None, PARSE)[1])
    assert stale.number == 3  # left running, as by a process that was killed
    resumed, launcher = _search(folder, n_trials=5)
    states = [t.state.name for t in resumed.trials]
    assert [t.params for t in resumed.trials[:3]] == kept
    assert states == ["COMPLETE"] * 3 + ["FAIL"] + ["COMPLETE"] * 2  # 5 counted, 1 interrupted
    assert len(launcher.jobs) == 4 and resumed.trials[4].params not in kept
    assert pd.read_csv(folder / "trials.csv")["message"][3] == "interrupted"


def test_a_failing_trial_is_fail_and_the_study_goes_on(tmp_path):
    study, _ = _search(tmp_path / "s", n_trials=10, fail_above=3.0, max_failure_rate=1.0)
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
        arguments = ["loss=focal", "loss.gamma=interval(0, 5)", *arguments]
        tune_search.search(tune_options.Options(**settings), arguments, folder, PARSE,
                           compose_raw, FakeLauncher(folder).launch)  # fmt: skip
    assert key in one_line(caught.value)
    assert not folder.exists()


@pytest.mark.slow
@pytest.mark.long
def test_a_search_through_the_cli_runs_jobs_and_continues(tmp_path):
    """The command line's form of a search continued by the same command, and a
    Lightning-Hydra-Template-style preset (its _target_ is hydra-optuna-sweeper's, its sampler
    node `{_target_: optuna.samplers.TPESampler, seed: 1234}`): another question, another folder."""
    sweep = tmp_path / "sweep"
    args = ["hydra.sweeper.seeds=2", *TINY, "backend=jax", "trainer.epochs=1"]
    search = ["-m", "hydra/sweeper=optuna", "loss=focal", "loss.gamma=interval(0, 5)",
              "loss.alpha=interval(0.05, 0.95)", "hydra.sweeper.objective=roc_auc", *args,
              f"hydra.sweep.dir={sweep}"]  # fmt: skip
    first = lossbench(*search, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "best: trial" in first.stdout
    assert len(list(sweep.glob("*/summary.json"))) == 4
    again = lossbench(*search, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = pd.read_csv(sweep / "trials.csv")
    assert len(trials) == 3 and len(list(sweep.glob("*/summary.json"))) == 6
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 6 and (summary["status"] == "ok").all()
    preset = tmp_path / "preset"
    taken = lossbench("hparams_search=focal_optuna", "hydra.sweeper.objective=null",
                      "optimized_metric=roc_auc", "hydra.sweeper.n_trials=2", *args,
                      f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert taken.returncode == 2 and "the study in" in taken.stderr  # another question
    run = lossbench("hparams_search=focal_optuna", "hydra.sweeper.objective=null",
                    "optimized_metric=roc_auc", "hydra.sweeper.n_trials=2", *args,
                    f"hydra.sweep.dir={preset}", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    command = yaml.safe_load((preset / "best.yaml").read_text())["command"]
    assert "hparams_search=focal_optuna" in command and "hydra.mode=RUN" in command  # runs once
    report = lossbench_report(sweep)
    assert report.returncode == 0, report.stderr
    text = (sweep / "report.md").read_text()
    assert "## Search" in text and "maximize `roc_auc`" in text


def lossbench_report(folder: Path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from lossbench.sweep.cli import main; main()",
                           str(folder), "--quiet"], capture_output=True, text=True)  # fmt: skip


def test_a_batch_with_more_failures_than_max_failure_rate_ends_the_study(tmp_path):
    """hydra-optuna-sweeper's meaning and default (0.0): one failed trial of a batch is one
    too many; the files say what ran, and the exit status is 1."""
    folder = tmp_path / "s"
    with pytest.raises(SweepIncomplete, match=r"1 of 1 trials of a batch failed, more than "
                       r"hydra.sweeper.max_failure_rate=0 allows \(\d+_job: error"):  # fmt: skip
        _search(folder, n_trials=10, fail_above=3.0)
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["state"].iloc[-1] == "FAIL" and (trials["state"].iloc[:-1] == "COMPLETE").all()
    # Half a batch may fail with max_failure_rate=0.5: the study goes on past a failure.
    study, _ = _search(tmp_path / "h", n_trials=8, fail_above=3.0, n_jobs=2,
                       max_failure_rate=0.5)  # fmt: skip
    assert "FAIL" in {t.state.name for t in study.trials}


def test_a_study_in_which_no_trial_finished_is_no_success(tmp_path):
    folder = tmp_path / "s"
    with pytest.raises(SweepIncomplete, match="no trial finished"):
        _search(folder, n_trials=3, fail_above=-1.0, max_failure_rate=1.0)
    assert (pd.read_csv(folder / "trials.csv")["state"] == "FAIL").all()
    assert not (folder / "best.yaml").exists()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("change", "key"),
    [({"objective": "ece"}, "hydra.sweeper.objective"),
     ({"direction": "minimize"}, "hydra.sweeper.direction"),
     ({"seeds": 3}, "hydra.sweeper.seeds"),
     ({"sampler": "random"}, "hydra.sweeper.sampler._target_"),
     ({"pruner": "median"}, "hydra.sweeper.pruner"),
     ({"arguments": ["loss=focal", "loss.gamma=interval(0, 4)"]},
      "hydra.sweeper.params.loss.gamma"),
     ({"arguments": ["loss=focal", "loss.gamma=interval(0, 5)", "trainer.epochs=3"]},
      "the fixed settings")],
)  # fmt: skip
def test_another_question_in_a_studys_folder_is_refused_and_changes_nothing(tmp_path, change, key):
    folder = tmp_path / "s"
    _search(folder, n_trials=3)
    before = _snapshot(folder)
    with pytest.raises(ConfigError) as caught:
        _search(folder, n_trials=5, **change)
    assert caught.value.key == key and str(folder) in str(caught.value)
    assert _snapshot(folder) == before
    study, _ = _search(folder, n_trials=4)  # the same question goes on
    assert len(study.trials) == 4


@pytest.mark.parametrize(
    ("arguments", "objective", "refused"),
    [(["data=sklearn", "data.name=breast_cancer"], "worst_group_accuracy", True),
     (["data.n_groups=2"], "accuracy_group_9", True),
     (["data.n_groups=2"], "accuracy_group_1", False),
     ([], "pr_auc", False)],
)  # fmt: skip
def test_an_objective_is_checked_as_trainer_select_is_on_the_data(
    tmp_path, arguments, objective, refused
):
    from lossbench.config.compose import compose

    options = tune_options.Options(objective=objective)
    cfg = compose(["loss=focal", *arguments])
    if not refused:
        tune_search.check_objectives(options, cfg)
        return
    with pytest.raises(ConfigError) as caught:
        tune_search.check_objectives(options, cfg)
    assert caught.value.key == "hydra.sweeper.objective"
    assert "a validation metric this run reports (val_loss, accuracy" in caught.value.expected


def test_the_grid_ends_cleanly_when_every_point_is_tried(tmp_path):
    folder = tmp_path / "s"
    arguments = ["loss=focal", "loss.gamma=choice(0, 2)"]
    study, launcher = _search(folder, n_trials=3, sampler="grid", arguments=arguments)
    assert sorted(t.params["loss.gamma"] for t in study.trials) == [0, 2]
    again, launcher = _search(folder, n_trials=3, sampler="grid", arguments=arguments)
    assert len(again.trials) == 2 and launcher.jobs == []
    assert len(pd.read_csv(folder / "trials.csv")) == 2


@pytest.mark.parametrize("name", ["tpe", "random", "grid", "cmaes", "nsgaii", "qmc", "gp"])
def test_every_sampler_of_hydra_optuna_sweeper_composes_and_builds_seeded(name):
    from lossbench.tune.samplers import make_sampler

    cfg = compose_raw(["hydra/sweeper=optuna", f"hydra/sweeper/sampler={name}",
                       "hydra.sweeper.sampler.seed=7"], multirun=True)  # fmt: skip
    node = cfg.hydra.sweeper.sampler
    sampler = make_sampler(node, {"loss.gamma": [0, 1]}, done=3)
    assert type(sampler).__name__ == str(node["_target_"]).rpartition(".")[2]
    if hasattr(sampler, "_rng"):
        seeded = make_sampler(node, {"loss.gamma": [0, 1]}, done=3)
        assert sampler._rng.rng.random() == seeded._rng.rng.random()  # seed 7 + 3 trials


@pytest.mark.parametrize(
    ("sampler", "key"),
    [({"_target_": "optuna.samplers.TPESampler", "seedz": 1}, "hydra.sweeper.sampler.seedz"),
     ({"_target_": "os.system"}, "hydra.sweeper.sampler._target_"),
     ({"_target_": "optuna.samplers.NSGAIISampler", "population_size": 1},
      "hydra.sweeper.sampler"),
     ("annealing", "hydra.sweeper.sampler")],
)  # fmt: skip
def test_a_bad_sampler_is_refused_by_its_key(sampler, key):
    from lossbench.tune.samplers import make_sampler

    with pytest.raises(ConfigError) as caught:
        make_sampler(sampler, None, 0)
    assert caught.value.key == key


def test_two_objectives_give_each_trials_values_and_the_pareto_front(tmp_path):
    folder = tmp_path / "s"
    study, _ = _search(folder, n_trials=8, objective=["minority_recall", "ece"],
                       direction=["maximize", "minimize"])  # fmt: skip
    trials = pd.read_csv(folder / "trials.csv")
    for column in ("minority_recall_seed0", "ece_seed1", "minority_recall_mean", "ece_mean"):
        assert column in trials.columns
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["objective"] == ["minority_recall", "ece"]
    front = best["pareto_front"]
    assert {e["trial"] for e in front} == {t.number for t in study.best_trials} and front
    for entry in front:  # nobody on the front is beaten on both objectives by another trial
        recall, ece = entry["values"]["minority_recall"], entry["values"]["ece"]
        dominated = trials[(trials["minority_recall_mean"] > recall) & (trials["ece_mean"] < ece)]
        assert dominated.empty and entry["command"].startswith("lossbench loss=focal")


def test_a_direction_left_null_is_the_objectives_own():
    options = tune_options.Options(objective=["ece", "pr_auc", "val_loss"])
    assert options.directions == ["minimize", "maximize", "minimize"]
    assert tune_options.Options(objective="ece", direction="maximize").directions == ["maximize"]


def test_a_custom_search_space_function_adds_parameters(tmp_path, monkeypatch):
    (tmp_path / "spaces.py").write_text(
        "def alpha(cfg, trial):\n"
        "    assert cfg.loss.name == 'focal'\n"
        "    trial.suggest_float('loss.alpha', 0.1, 0.9)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("spaces.alpha", "spaces:alpha", f"{tmp_path / 'spaces.py'}:alpha"):
        folder = tmp_path / target.replace("/", "_").replace(":", "_")
        study, launcher = _search(folder, n_trials=2, custom_search_space=target)
        assert all("loss.alpha" in t.params for t in study.trials)
        assert all(any(o.startswith("loss.alpha=") for o in job) for job in launcher.jobs)


def _journal_study(folder: Path, values: list[list[float]]) -> object:
    """A study whose complete trials have these per-epoch values as intermediate values."""
    from lossbench.tune.pruning import JOURNAL, STUDY_NAME

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / JOURNAL)))  # fmt: skip
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize")
    for curve in values:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    return study


def test_a_trial_whose_seeds_fall_behind_the_median_is_pruned_and_its_next_seed_too(tmp_path):
    from lossbench.tune.pruning import PRUNED_MARK, EpochCheck

    study = _journal_study(tmp_path, [[0.8, 0.85, 0.9]] * 5)
    running = study.ask()
    options = tune_options.Options(objective="minority_recall", pruner="median", seeds=2)
    first = EpochCheck(options, tmp_path, running.number, seed_index=0, epochs=3)
    assert first(None) is False  # nothing pruned it yet
    assert first({"minority_recall": 0.82}) is False  # ahead of the median at epoch 0
    assert first({"minority_recall": 0.5}) is True  # behind at epoch 1
    trial = study.trials[running.number]
    assert trial.user_attrs[PRUNED_MARK] == {"seed": 0, "epoch": 1}
    assert trial.user_attrs["epochs_seed0"] == [0.82, 0.5]
    second = EpochCheck(options, tmp_path, running.number, seed_index=1, epochs=3)
    assert second(None) is True


def test_the_next_seed_judges_the_mean_of_the_seeds_so_far(tmp_path):
    from lossbench.tune.pruning import EpochCheck

    study = _journal_study(tmp_path, [[0.8, 0.85]] * 5)
    running = study.ask()
    options = tune_options.Options(objective="minority_recall", pruner="median", seeds=2)
    first = EpochCheck(options, tmp_path, running.number, seed_index=0, epochs=2)
    assert not first({"minority_recall": 0.95}) and not first({"minority_recall": 0.95})
    second = EpochCheck(options, tmp_path, running.number, seed_index=1, epochs=2)
    # 0.7 alone is behind the median 0.8; with the first seed's 0.95 the mean is 0.825.
    assert second({"minority_recall": 0.7}) is False
    assert second({"minority_recall": 0.6}) is True  # mean 0.775 against 0.85 at epoch 1


SEARCH = ["-m", "hydra/sweeper=optuna", "loss=focal", "loss.gamma=interval(0, 5)"]
QUICK = [*TINY, "backend=jax", "trainer.epochs=1"]
NO_DATA = [*TINY_TRAINING, "backend=jax"]  # for searches refused before they read any data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "key"),
    [(["hydra.sweeper.objective=worst_group_accuracy", "data=sklearn",
       "data.name=breast_cancer"], "hydra.sweeper.objective"),
     (["hydra.sweeper.objective=accuracy_group_9", "data.n_groups=2"], "hydra.sweeper.objective"),
     (["hydra.sweeper.objective=roc_auc", "hydra.sweeper.sampler.seedz=1"],
      "hydra.sweeper.sampler.seedz"),
     (["hydra.sweeper.objective=roc_auc", "hydra.sweeper.sampler._target_=os.system"],
      "hydra.sweeper.sampler._target_"),
     (["hydra.sweeper.objective=roc_auc", "hydra.sweeper.pruner=sometimes"],
      "hydra.sweeper.pruner"),
     (["hydra.sweeper.objective=roc_auc", "hydra.sweeper.max_failure_rate=2"],
      "hydra.sweeper.max_failure_rate"),
     (["hydra.sweeper.objective=[roc_auc,ece]", "hydra.sweeper.direction=[maximize]"],
      "hydra.sweeper.direction")],
)  # fmt: skip
def test_bad_search_input_is_one_line_before_any_trial(tmp_path, arguments, key):
    folder = tmp_path / "s"
    proc = lossbench(*SEARCH, *arguments, *NO_DATA, f"hydra.sweep.dir={folder}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"lossbench: error: invalid value for `{key}`"), line
    assert not folder.exists()


@pytest.mark.slow
def test_a_search_folder_answers_one_question_and_its_grid_ends_cleanly(tmp_path):
    folder = tmp_path / "s"
    grid = [*SEARCH[:3], "loss.gamma=choice(0, 2)", "hydra/sweeper/sampler=grid",
            *QUICK, "data.test_fraction=0.2", f"hydra.sweep.dir={folder}"]  # fmt: skip
    first = lossbench(*grid, "hydra.sweeper.objective=roc_auc", "hydra.sweeper.n_trials=3",
                      cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert len(pd.read_csv(folder / "trials.csv")) == 2  # the grid's two points, then it ends
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["split"] == "validation" and best["direction"] == "maximize"
    before = _snapshot(folder)
    other = lossbench(*grid, "hydra.sweeper.objective=ece", "hydra.sweeper.direction=minimize",
                      "hydra.sweeper.n_trials=7", cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2
    (line,) = other.stderr.strip().splitlines()
    assert line.startswith("lossbench: error: invalid value for `hydra.sweeper.objective`: "
                           f"expected roc_auc: the study in {folder} answers")  # fmt: skip
    assert _snapshot(folder) == before
    again = lossbench(*grid, "hydra.sweeper.objective=roc_auc", "hydra.sweeper.n_trials=3",
                      cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(pd.read_csv(folder / "trials.csv")) == 2


@pytest.mark.slow
def test_a_search_whose_trials_all_fail_exits_1(tmp_path):
    folder = tmp_path / "s"
    proc = lossbench(*SEARCH[:3], "trainer.optimizer=sgd",
                     "trainer.learning_rate=interval(1000, 10000)", "hydra.sweeper.objective=mse",
                     "loss=mse", *QUICK, f"hydra.sweep.dir={folder}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "the search stopped: 1 of 1 trials of a batch failed" in proc.stderr
    assert list(pd.read_csv(folder / "trials.csv")["state"]) == ["FAIL"]


@pytest.mark.slow
@pytest.mark.long
def test_two_objectives_a_random_sampler_and_a_custom_space_through_the_cli(tmp_path):
    (tmp_path / "spaces.py").write_text(
        "def alpha(cfg, trial):\n    trial.suggest_float('loss.alpha', 0.1, 0.9)\n"
    )
    folder = tmp_path / "s"
    proc = lossbench(*SEARCH, "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=3",
                     "hydra.sweeper.objective=[minority_recall,ece]",
                     "hydra.sweeper.direction=[maximize,minimize]", "hydra.sweeper.n_trials=4",
                     "hydra.sweeper.custom_search_space=spaces.py:alpha", *QUICK,
                     f"hydra.sweep.dir={folder}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    trials = pd.read_csv(folder / "trials.csv")
    assert {"minority_recall_mean", "ece_mean", "loss.alpha"} <= set(trials.columns)
    front = yaml.safe_load((folder / "best.yaml").read_text())["pareto_front"]
    assert front and all("loss.alpha=" in entry["command"] for entry in front)
    report = lossbench_report(folder)
    assert report.returncode == 0, report.stderr
    assert "**Pareto front:**" in (folder / "report.md").read_text()
    assert (folder / "pareto.png").exists()


@pytest.mark.slow
@pytest.mark.long
def test_a_pruned_search_keeps_its_pruned_trials_and_their_tables(tmp_path):
    folder = tmp_path / "s"
    args = [*SEARCH, "loss.alpha=interval(0.05, 0.95)", "hydra.sweeper.n_trials=10",
            "hydra.sweeper.seeds=2", "hydra.sweeper.objective=minority_recall",
            "hydra.sweeper.pruner=median", "backend=jax", "data.n_samples=4000",
            "trainer.epochs=5", "trainer.progress=false", f"hydra.sweep.dir={folder}"]  # fmt: skip
    proc = lossbench(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trials = pd.read_csv(folder / "trials.csv")
    pruned = trials[trials["state"] == "PRUNED"]
    assert len(pruned) >= 1 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert pruned["mean"].isna().all()  # a pruned trial has no value of its own
    for jobs in pruned["jobs"]:
        first, second = (json.loads((folder / j / "summary.json").read_text())
                         for j in jobs.split())  # fmt: skip
        assert first["status"] == second["status"] == "pruned"
        steps = pd.read_csv(folder / jobs.split()[0] / "steps.csv")
        assert len(steps) == first["steps"] > 0 and first["stopped"]["pruned"]
        assert second["steps"] == 0  # its trial was pruned before it started
    again = lossbench(*args, cwd=tmp_path)  # resumed: every trial counted, the pruned kept
    assert again.returncode == 0, again.stderr
    assert pd.read_csv(folder / "trials.csv")["state"].tolist() == trials["state"].tolist()
