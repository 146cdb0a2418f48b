"""Memory bounds: every key that sizes an allocation is bounded by what the run would allocate.

`footprint` estimates a run's peak memory from its config: the data generator's arrays, the
graph task's dense N x N arrays, the model with its gradients and optimizer state, and the
per-step records with the tables made from them. A key is refused when the estimate exceeds the
budget (half of this machine's memory, or of the process's cgroup limit when lower); the message
gives the largest value that key could take with the others as they are.

`memory_problems` checks a config before any job is built; `fit_problems` checks a job again
once its data and model are built, against the budget its caller read: arithmetic only.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator

from lossbench.bounds import GIB, memory_budget
from lossbench.config.schema import Config, CustomModel, MlpModel, Problem, Task

# Bytes per element of the generator's arrays: float64 features and one-hot groups, then the
# float32 features, their train/validation copies and the framework's device copy.
_BYTES_PER_FEATURE = 8 + 3 * 4
# Targets: float64 while generated, float32 in the splits and on the device.
_BYTES_PER_TARGET = 16
# Graph task: the generator's uniform draws (float64), probabilities (float64), masks and the
# float32 adjacency, then the loss's boolean copy and its upper triangle.
_BYTES_PER_NODE_PAIR = 32
# Per optimizer step: the columnar records (int32/float32) and one steps.csv row as a frame and
# as text; per step and layer: the long grad_norms table (int64 step, object layer name, float)
# and its text.
_BYTES_PER_STEP = 128
_BYTES_PER_STEP_LAYER = 96
# Per recorded step and unit (trainer.record_groups): three float32 records and a grad_groups
# row (int64 step, two object names, three numbers) and its text.
_BYTES_PER_STEP_UNIT = 128
# Per model parameter: weights, gradients, two Adam slots and the runner's copies.
_BYTES_PER_PARAMETER = 24
# The trainable layers of a model not yet built: the default MLP's.
_DEFAULT_LAYERS = len(MlpModel().hidden) + 1


def target_width(cfg: Config, task: Task) -> int:
    """Target columns per sample of `task`."""
    d = cfg.data
    return {
        Task.binary: 1,
        Task.grouped: d.n_outputs,
        Task.multiclass: d.n_classes,
        Task.grid: d.grid[0] * d.grid[1] if len(d.grid) == 2 else 1,
        Task.graph: d.embedding_dim,
        Task.multitask: 4 + d.n_classes,
    }[task]


def n_parameters(cfg: Config, task: Task) -> int:
    """Weights and biases of the MLP from the features to the task's outputs (a user's model's
    are counted once it is built: `model_problems`)."""
    if not isinstance(cfg.model, MlpModel):
        return 0
    widths = [cfg.data.n_features + cfg.data.n_groups, *cfg.model.hidden, target_width(cfg, task)]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def footprint(cfg: Config, task: Task) -> int:
    """Estimated peak bytes of a run of `cfg` on `task`."""
    d, t = cfg.data, cfg.trainer
    n = d.n_nodes if task is Task.graph else d.n_samples
    features = d.n_features + d.n_groups
    data = n * features * _BYTES_PER_FEATURE + n * target_width(cfg, task) * _BYTES_PER_TARGET
    data += d.n_groups * d.n_groups * 8  # the one-hot lookup table
    if task is Task.graph:
        data += n * n * _BYTES_PER_NODE_PAIR
    n_train = max(n - math.ceil(n * d.val_fraction), 1)
    records = records_bytes(cfg, n_train, t.epochs)
    return data + records + n_parameters(cfg, task) * _BYTES_PER_PARAMETER


def records_bytes(
    cfg: Config, n_train: int, epochs: int, layers: int | None = None, units: int | None = None
) -> int:
    """Bytes of the per-step records and tables of `epochs` over `n_train` samples (`layers`:
    the model's trainable layers, `units`: the groups and classes `trainer.record_groups`
    records, once the data and model are built; before, generated data's at most)."""
    steps = math.ceil(n_train / max(cfg.trainer.batch_size, 1)) * epochs
    if layers is None:  # a user's model's layers are counted once it is built
        layers = len(cfg.model.hidden) + 1 if isinstance(cfg.model, MlpModel) else _DEFAULT_LAYERS
    need = steps * (_BYTES_PER_STEP + _BYTES_PER_STEP_LAYER * layers)
    if cfg.trainer.record_groups:
        units = units if units is not None else cfg.data.n_groups + cfg.data.n_classes
        every = max(int(cfg.trainer.record_groups_every), 1)
        need += math.ceil(steps / every) * units * _BYTES_PER_STEP_UNIT
    return need


def records_problems(
    cfg: Config, n_train: int, units: int | None, budget: int
) -> Iterator[Problem]:
    """`trainer.epochs` when the per-step tables of a run over `n_train` training samples (a
    table's, known once it is read) would not fit the memory `budget`."""
    need = records_bytes(cfg, n_train, cfg.trainer.epochs, units=units)
    if need <= budget:
        return
    limit = _largest(
        lambda e: records_bytes(cfg, n_train, e, units=units) <= budget, cfg.trainer.epochs
    )
    why = (
        f"this machine's memory budget is {budget / GIB:.1f} GiB; the per-step tables of "
        f"{n_train} training samples would need {need / GIB:.1f} GiB"
    )
    yield "trainer.epochs", f"an integer <= {max(limit, 1)} ({why})", cfg.trainer.epochs


# Per activation value of a training step: the forward value, its gradient and XLA's temporaries.
_BYTES_PER_ACTIVATION = 12


def model_problems(
    cfg: Config,
    n_params: int,
    activations: int,
    n_layers: int,
    n_train: int,
    units: int | None,
    budget: int,
) -> Iterator[Problem]:
    """The model's key when a built model would not fit the memory `budget`: its parameters
    with their gradients and optimizer state, a batch's activations (`activations` values per
    sample) and the per-step tables of its `n_layers` layers."""
    need = (
        n_params * _BYTES_PER_PARAMETER
        + cfg.trainer.batch_size * activations * _BYTES_PER_ACTIVATION
        + records_bytes(cfg, n_train, cfg.trainer.epochs, n_layers, units)
    )
    if need <= budget:
        return
    m = cfg.model
    custom = isinstance(m, CustomModel)
    key, value = ("model.target", m.target) if custom else ("model.hidden", m.hidden)
    yield (
        key,
        f"a model that fits this machine's memory budget of {budget / GIB:.1f} GiB "
        "(parameters, gradients, optimizer state and a batch's activations)",
        f"{value} ({n_params:,} parameters and {activations:,} activations per sample: "
        f"about {need / GIB:.1f} GiB)",
    )


def fit_problems(
    cfg: Config, n_train: int, units: int | None, model: tuple[int, int, int] | None, budget: int
) -> Iterator[Problem]:
    """What a job built from its data would not fit in the memory `budget`: its per-step tables
    (`trainer.epochs`), then a new model's (parameters, activations per sample and trainable
    layers; None for a kept one, checked when it was built)."""
    found = list(records_problems(cfg, n_train, units, budget))
    if found or model is None:
        yield from found
        return
    yield from model_problems(cfg, *model, n_train, units, budget)


# What one process holds before its data: interpreter, framework and compiled programs (the
# default run peaks at about 0.9 GiB in docs/benchmarks.md).
PROCESS_BYTES = GIB


def lanes_that_fit(run_bytes: int) -> int:
    """How many seeds of `run_bytes` one process can train together within the budget."""
    return max((memory_budget() - PROCESS_BYTES) // max(run_bytes, 1), 1)


def _get(cfg: Config, key: str) -> int:
    """A size key's value; the grid counts as its number of cells."""
    if key == "data.grid":
        return cfg.data.grid[0] * cfg.data.grid[1] if len(cfg.data.grid) == 2 else 1
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _with(cfg: Config, key: str, value: int) -> Config:
    section, name = key.split(".")
    value_or_grid = [value, 1] if key == "data.grid" else value
    part = dataclasses.replace(getattr(cfg, section), **{name: value_or_grid})
    return dataclasses.replace(cfg, **{section: part})


def _largest(fits: Callable[[int], bool], upper: int) -> int:
    """The largest v in [0, upper] with fits(v) (fits is monotone: true, then false)."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def _size_keys(task: Task) -> list[str]:
    """The integer keys that size this task's allocations."""
    keys = ["data.n_nodes" if task is Task.graph else "data.n_samples"]
    keys += ["data.n_features", "data.n_groups", "trainer.epochs"]
    keys += {
        Task.grouped: ["data.n_outputs"],
        Task.multiclass: ["data.n_classes"],
        Task.multitask: ["data.n_classes"],
        Task.graph: ["data.embedding_dim"],
        Task.grid: ["data.grid"],
    }.get(task, [])
    return keys


def memory_problems(cfg: Config, task: Task) -> Iterator[Problem]:
    """Name the key that takes the run over the memory budget, with its largest allowed value.

    The key blamed is, of those above their limit (with the others as given), the one
    furthest above its default.
    """
    budget = memory_budget()
    need = footprint(cfg, task)
    if need <= budget:
        return
    why = (
        f"this machine's memory budget is {budget / GIB:.1f} GiB; "
        f"the run would need {need / GIB:.1f} GiB"
    )
    worst: tuple[float, Problem] | None = None
    for key in _size_keys(task):
        value = _get(cfg, key)
        limit = _largest(lambda v, k=key: footprint(_with(cfg, k, v), task) <= budget, value)
        if 1 <= limit < value:  # a key that cannot fit even at 1 is not the cause
            ratio = value / _get(Config(loss=None), key)
            expected = (
                f"a grid of at most {limit} cells"
                if key == "data.grid"
                else (f"an integer <= {limit}")
            )
            received = list(cfg.data.grid) if key == "data.grid" else value
            problem = (key, f"{expected} ({why})", received)
            if worst is None or ratio > worst[0]:
                worst = (ratio, problem)
    if worst is not None:
        yield worst[1]
        return
    # No single size key fits the run: the model (its parameters) is what is left.
    most = budget // _BYTES_PER_PARAMETER
    if isinstance(cfg.model, MlpModel):
        expected = f"layer widths with at most {most} parameters ({why})"
        yield "model.hidden", expected, list(cfg.model.hidden)
    else:  # a user's model: named by its target, as once it is built (`model_problems`)
        yield "model.target", f"a model with at most {most} parameters ({why})", cfg.model.target
