"""Searching a loss's parameters with Optuna (`hydra/sweeper=optuna`), trial by trial.

Each trial asks Optuna's sampler for parameter values, runs them on `seeds` seeds as ordinary
lossbench jobs (one folder each, through whichever Hydra launcher is chosen), and tells Optuna
the mean over seeds of each objective, a validation metric of the jobs' summaries; a trial with a
job that did not finish is FAIL, never a number, and one a pruner stopped is PRUNED. The study
lives in the sweep folder (`optuna.journal`, Optuna's journal file, safe for several processes)
and answers one question: the same command into the same folder continues it, another objective,
direction, search space, sampler or fixed setting is refused before any trial.

- `options`: `hydra.sweeper.*` (hydra-optuna-sweeper's keys, plus `objective`, `seeds` and
  `pruner`) and their checks;
- `space`: the search space from hydra-optuna-sweeper's grammar (`interval`, `int`, `tag(log)`,
  `choice`, `range`) and a user's `custom_search_space` function;
- `samplers`: the sampler a name or a `_target_` node asks for, refused by key;
- `pruning`: the pruner, and the check each job makes after every epoch;
- `study`: opening a study (and refusing another question), trials.csv and best.yaml;
- `search`: the ask-and-tell loop and its report.

Import the modules themselves (`from lossbench.tune.search import search`): this package's own
module imports nothing, so the job side (`pruning`) does not load the search.
"""
