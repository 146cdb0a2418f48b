"""`OptunaSweeper` under hydra-optuna-sweeper's import path (see this package's docstring).

A subclass, not an alias: Hydra finds a plugin class by the module that defines it.
"""

from hydra_plugins.lossbench_launcher import tuning


class OptunaSweeper(tuning.OptunaSweeper):
    """lossbench's Optuna sweeper (`hydra_plugins.lossbench_launcher.tuning.OptunaSweeper`)."""
