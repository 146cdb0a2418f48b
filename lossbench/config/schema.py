"""Typed config schemas: the experiment's keys, their types and defaults.

OmegaConf enforces types and key names when Hydra composes the config (a wrong key or type fails
there, naming the key). Ranges a type cannot express are checked in `lossbench.config.checks`.
Each loss variant's schema is a `LossConfig` subclass declared beside its checks and its builder
in `lossbench.variants` (see `lossbench.variants.registry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from omegaconf import MISSING

from lossbench.bounds import Problem as Problem  # the checks' record, read by every schema


class Backend(StrEnum):
    tensorflow = "tensorflow"
    jax = "jax"


class Task(StrEnum):
    """What data, output head and metrics an experiment has (see `lossbench.data.synthetic`)."""

    binary = "binary"
    grouped = "grouped"
    multiclass = "multiclass"
    grid = "grid"
    graph = "graph"
    multitask = "multitask"


class DataSource(StrEnum):
    """Where the data comes from: lossbench's generator, a user's table, scikit-learn."""

    synthetic = "synthetic"
    table = "table"
    sklearn = "sklearn"


class NanPolicy(StrEnum):
    """What to do with rows whose features or targets are NaN or infinite."""

    refuse = "refuse"
    drop = "drop"


# Real data: the files a table may be, and scikit-learn's bundled datasets (nothing downloads).
TABLE_SUFFIXES = (".csv", ".parquet", ".npz")
SKLEARN_DATASETS = ("breast_cancer", "wine", "digits", "iris", "diabetes", "linnerud")
# The tasks a table can have (lossbench's grouped task is regression, with or without groups).
TABLE_TASKS = ("binary", "multiclass", "grouped")


class ModelSource(StrEnum):
    """Whose network trains: lossbench's MLP, or a user's (`model=custom`)."""

    mlp = "mlp"
    custom = "custom"


class Optimizer(StrEnum):
    adam = "adam"
    sgd = "sgd"


@dataclass
class LossConfig:
    """A loss variant's schema: `name` plus the variant's typed parameters.

    Subclasses are declared with `lossbench.variants.registry.register_variant`, which sets the
    class attributes below; the class is the variant's identity (`name` must agree with it).
    """

    name: str = MISSING
    # The task to train on: null is the variant's own; a variant with one task accepts only it,
    # so one sweep can set it for all (`loss=bce,group_dro loss.task=binary`).
    task: Task | None = None

    variant: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_task: ClassVar[Task | None] = None
    # Keys outside `loss` that this variant's loss reads (`scale.epsilon`).
    reads: ClassVar[tuple[str, ...]] = ()

    def shared_keys(self) -> frozenset[str]:
        """The keys outside `loss` that this config's loss reads (a wrapper: its base's too)."""
        return frozenset(self.reads)

    def training_task(self) -> Task:
        """The task (data, head, metrics) this loss trains on."""
        if self.default_task is None:
            raise NotImplementedError(f"{type(self).__name__} must define training_task()")
        return self.default_task

    def check(self, data: DataConfig) -> Iterator[Problem]:
        """Range problems of this loss's parameters; keys relative to the loss node."""
        return iter(())

    def build(self, ctx: Any) -> Any:
        """The Keras loss for this config (imports the framework); `ctx` is the registry's
        `BuildContext` (the data and task the loss is built for)."""
        raise NotImplementedError(f"{type(self).__name__} must define build()")


@dataclass
class DataConfig:
    """The keys every data source reads. Each source's schema extends it and is stored as that
    option (`schema/data/<source>`): a key of another source fails when Hydra composes."""

    source: DataSource = DataSource.synthetic
    val_fraction: float = 0.2  # the validation split's share of the rows
    # A held-out test split: training and `trainer.select` never see it.
    test_fraction: float = 0.0
    # The fraction of training target entries replaced by NaN (and a tenth of them by Inf), to
    # test a loss's robustness (set by loss=robust_weights).
    nan_rate: float = 0.0


@dataclass
class SyntheticData(DataConfig):
    """`data=synthetic`: lossbench's generator (lossbench/data/synthetic.py)."""

    source: DataSource = DataSource.synthetic
    n_samples: int = 16384
    n_features: int = 32
    positive_rate: float = 0.1  # fraction of positive labels (binary task)
    n_groups: int = 8
    group_skew: float = 1.0  # group sizes follow 1 / (rank + 1) ** group_skew
    # Group target scales are spaced geometrically in [min, max] (grouped task).
    group_scale_min: float = 0.25
    group_scale_max: float = 4.0
    n_outputs: int = 4  # regression targets per sample (grouped task)
    noise: float = 0.1
    n_classes: int = 5  # multiclass and multitask tasks
    class_imbalance: float = 0.4  # class k has a prior proportional to class_imbalance ** k
    grid: list[int] = field(default_factory=lambda: [8, 8])  # the grid task's output (context_mask)
    n_nodes: int = 1024  # nodes of the graph task (context_graph); they replace n_samples there
    embedding_dim: int = 16  # node embedding width (graph task)
    graph_p_in: float = 0.05  # edge probability inside a community (= group) ...
    graph_p_out: float = 0.002  # ... and between communities
    # Binary data with a spurious attribute that equals the label in this fraction of the
    # samples (Waterbirds-like); the groups become the four (label, attribute) pairs.
    spurious: float | None = None


@dataclass
class RealData(DataConfig):
    """The keys of real data, a table or a bundled dataset (lossbench/data/tabular.py)."""

    target: Any = None  # a column name or a list of them (sklearn: the dataset's target)
    features: list[str] | None = None  # null: every numeric column but target, group, split
    group: str | None = None  # a column whose values are the groups (strings or integers)
    task: Task | None = None  # binary | multiclass | grouped (regression); null: inferred
    split: str | None = None  # a column of train/val values; null: a split by seed (stratified)
    nan_policy: NanPolicy = NanPolicy.refuse  # drop: rows with NaN or inf in features or targets
    # Binary tables: keep a random subset of the positives (label 1) so that they make up this
    # fraction of the rows (an imbalance study on real data); null: all rows.
    positive_fraction: float | None = None
    # The shape of one sample that the feature columns are, in order (an image: [8, 8, 1]); a
    # user's model (model=custom) receives its inputs in this shape. null: flat, or an .npz
    # array's own shape.
    input_shape: list[int] | None = None


@dataclass
class TableData(RealData):
    """`data=table`: a user's .csv, .parquet or .npz file."""

    source: DataSource = DataSource.table
    path: str | None = None  # relative to where lossbench starts


@dataclass
class SklearnData(RealData):
    """`data=sklearn`: one of scikit-learn's bundled datasets (SKLEARN_DATASETS)."""

    source: DataSource = DataSource.sklearn
    name: str = "breast_cancer"


DATA_SCHEMAS: dict[DataSource, type[DataConfig]] = {
    DataSource.synthetic: SyntheticData,
    DataSource.table: TableData,
    DataSource.sklearn: SklearnData,
}


@dataclass
class ModelConfig:
    """The keys every model source reads; each source's schema extends it
    (`schema/model/<source>`)."""

    source: ModelSource = ModelSource.mlp


@dataclass
class MlpModel(ModelConfig):
    """`model=mlp`: lossbench's MLP; the output head (units, activation) comes from the task."""

    source: ModelSource = ModelSource.mlp
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"


@dataclass
class CustomModel(ModelConfig):
    """`model=custom`: a user's network."""

    source: ModelSource = ModelSource.custom
    # path/to/file.py:function or package.module:function, called as function(input_shape,
    # **params) and returning a Keras model or layer.
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Add the task's output head to the user's model (false: the model ends in the task's
    # outputs itself).
    head: bool = True


MODEL_SCHEMAS: dict[ModelSource, type[ModelConfig]] = {
    ModelSource.mlp: MlpModel,
    ModelSource.custom: CustomModel,
}


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: Optimizer = Optimizer.adam
    # Optimizer steps per compiled call; the per-step values come back once per chunk.
    steps_per_chunk: int = 1024
    record: bool = True  # per-step loss and global/per-layer gradient norms
    # XLA-compile the chunk of steps; null: XLA, unless a model other than dense layers runs
    # faster on TensorFlow without it (a timed probe at the start: lossbench.trainer.programs).
    jit_compile: bool | None = None
    # Steps per unrolled compiled program instead of one loop per chunk; null: the loop, unless
    # the probe finds programs of 4 steps faster for a model other than dense layers.
    unroll: int | None = None
    progress: bool = True  # rich progress bar (only when the console is a terminal)
    tensorboard: bool = False  # also write TensorBoard event files to <run>/tensorboard/
    # The epoch whose weights the summary, test metrics and predictions describe: `last`, or
    # `best:<metric>` (the best validation value of that metric, lower or higher by its kind).
    select: str = "last"
    # Each group's and class's contribution to the step's gradient (grad_groups.csv), on every
    # `record_groups_every`-th step.
    record_groups: bool = False
    record_groups_every: int = 1


@dataclass
class ScaleConfig:
    epsilon: float = 1e-6


@dataclass
class ReportConfig:
    # The loss every variant of a sweep is compared with (verdicts.csv); null: the task's plain
    # loss (bce, mse) when the sweep ran it.
    baseline: str | None = None


class TrackerName(StrEnum):
    """Where runs are also published (`lossbench.tracking`): nowhere, MLflow, TensorBoard."""

    none = "none"
    mlflow = "mlflow"
    tensorboard = "tensorboard"


@dataclass
class TrackerConfig:
    name: TrackerName = TrackerName.none
    # mlflow: the tracking URI; null: MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db.
    uri: str | None = None
    # mlflow: the experiment's name; null: the study's, the search's or the runs' loss name.
    experiment: str | None = None


def tracker_of(cfg: Any) -> TrackerName:
    """The tracker of a config, typed or as Hydra composed it."""
    return TrackerName(str(getattr(cfg.tracker, "name", "none")).rsplit(".", 1)[-1])


def writes_tensorboard(cfg: Any) -> bool:
    """Whether a run writes TensorBoard event files (`tracker=tensorboard` adds the HParams
    dashboard's session data; `trainer.tensorboard=true` implies it)."""
    return tracker_of(cfg) is TrackerName.tensorboard or bool(cfg.trainer.tensorboard)


@dataclass
class Config:
    loss: Any = MISSING
    # Each a source's schema (SyntheticData, TableData, ...; MlpModel, CustomModel), chosen by
    # the config group `data=` and `model=`.
    data: DataConfig = field(default_factory=SyntheticData)
    model: ModelConfig = field(default_factory=MlpModel)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    seed: int = 0
    backend: Backend = Backend.tensorflow
    debug: bool = False
    # Sweeps: keep the jobs of this sweep's folder that finished with the same config, run the
    # rest, and aggregate all.
    resume: bool = False
    # hydra/sweeper=optuna: the objective when hydra.sweeper.objective is null (the key
    # Lightning-Hydra-Template's hparams_search configs set); read by no other run.
    optimized_metric: str | None = None
