"""Run and sweep folders as lossbench writes them, built by hand with known values, for the
trackers to publish (every value a test reads back comes from these files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lossbench.store.run_folder import RunFolder

METRICS = ("accuracy", "ece")


def make_job(path: Path, loss: str = "focal", seed: int = 0, status: str = "ok",
             steps: int = 12, epochs: int = 3, gamma: float = 2.0) -> Path:  # fmt: skip
    """A finished job's folder: its record, steps.csv, epochs.csv and summary.json."""
    rng = np.random.default_rng(seed)
    record = path / ".hydra"
    record.mkdir(parents=True)
    config = {"loss": {"name": loss, "gamma": gamma}, "data": {"n_groups": 4},
              "model": {"hidden": [16, 8]}, "trainer": {"epochs": epochs, "progress": False},
              "seed": seed, "backend": "tensorflow", "resume": False, "debug": False,
              "tracker": {"name": "mlflow", "uri": None, "experiment": None}}  # fmt: skip
    (record / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"loss={loss}", f"seed={seed}", f"loss.gamma={gamma}", "trainer.progress=false",
                 "tracker=mlflow"]  # fmt: skip
    (record / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    per_epoch = steps // epochs
    pd.DataFrame({"step": range(steps), "epoch": np.arange(steps) // per_epoch,
                  "loss": rng.random(steps), "grad_norm": rng.random(steps)}).to_csv(
        path / "steps.csv", index=False)  # fmt: skip
    table = pd.DataFrame({"epoch": range(epochs), "step": [(e + 1) * per_epoch - 1
                                                           for e in range(epochs)]})  # fmt: skip
    for name in ("val_loss", *METRICS):
        table[name] = rng.random(epochs)
    table.loc[0, "ece"] = np.nan  # a metric an epoch could not compute is left out, not 0
    table.to_csv(path / "epochs.csv", index=False)
    selected = table.iloc[-1]
    summary = {"status": status, "loss": loss, "seed": seed, "steps": steps, "epochs": epochs,
               "final_loss": 0.5, "train_seconds": 2.0, "compile_seconds": 1.0, "device": "CPU",
               "backend": "tensorflow", "versions": {"keras": "3.15.1"},
               "selected_epoch": epochs - 1,
               "metrics": {k: float(selected[k]) for k in ("val_loss", *METRICS)},
               "test_metrics": {"accuracy": 0.75}}  # fmt: skip
    if status != "ok":
        summary["message"] = f"the run ended as {status}"
    RunFolder(path).write(summary)
    return path


def make_sweep(
    root: Path, losses: tuple[str, ...] = ("bce", "focal"), seeds: int = 2
) -> list[Path]:
    """A sweep's folder: its plan (jobs.yaml) and one job folder per loss and seed."""
    jobs, folders = [], []
    for k, (loss, seed) in enumerate((name, s) for name in losses for s in range(seeds)):
        overrides = [f"loss={loss}", f"seed={seed}", "loss.gamma=2.0", "trainer.progress=false",
                     "tracker=mlflow"]  # fmt: skip
        jobs.append(overrides)
        folders.append(make_job(root / f"{k}_{loss}_seed{seed}", loss, seed))
    (root / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
    return folders
