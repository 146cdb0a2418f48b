"""lossbench's loss library: `keras.losses.Loss` subclasses written with `keras.ops`.

Use them in plain Keras like any built-in loss. How a config becomes one of these is each
variant's business (`lossbench.variants`); this package knows nothing of configs or data.
"""

from lossbench.losses.base import LossbenchLoss
from lossbench.losses.classification import (
    BinaryCrossentropy,
    TemperatureCrossentropy,
    ThresholdBinaryCrossentropy,
)
from lossbench.losses.context import ContextGraphLoss, ContextMaskLoss
from lossbench.losses.literature import (
    ClassBalancedLoss,
    FocalLoss,
    GroupDROLoss,
    LogitAdjustedLoss,
    effective_number_weights,
)
from lossbench.losses.multitask import MultiTaskLoss
from lossbench.losses.regression import GroupedDynamicLoss, GroupedScaleLoss, MeanSquaredError
from lossbench.losses.scaled import ScaledLoss
from lossbench.losses.weighted import OutputWeightedLoss, RobustWeightedLoss, SampleWeightedLoss

__all__ = [
    "BinaryCrossentropy",
    "ClassBalancedLoss",
    "ContextGraphLoss",
    "ContextMaskLoss",
    "FocalLoss",
    "GroupDROLoss",
    "GroupedDynamicLoss",
    "GroupedScaleLoss",
    "LogitAdjustedLoss",
    "LossbenchLoss",
    "MeanSquaredError",
    "MultiTaskLoss",
    "OutputWeightedLoss",
    "RobustWeightedLoss",
    "SampleWeightedLoss",
    "ScaledLoss",
    "TemperatureCrossentropy",
    "ThresholdBinaryCrossentropy",
    "effective_number_weights",
]
