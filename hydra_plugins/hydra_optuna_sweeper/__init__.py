"""hydra-optuna-sweeper's import path, served by lossbench's Optuna sweeper.

Lightning-Hydra-Template's `hparams_search` configs name the sweeper by this path
(`_target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper`); that plugin pins
Optuna below 3 and cannot be installed beside lossbench's Optuna, so the path leads here.
"""
