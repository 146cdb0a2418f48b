"""One run, from a checked config to its tables: the model (models.py), the experiment built from
data, loss, model, optimizer and runner (experiment.py), training it and writing its folder
(training.py), scoring each epoch and the kept one (evaluation.py, metrics.py), and each group's
and class's share of the gradient (shares.py). A Hydra job around it lives in `lossbench.jobs`.
"""
