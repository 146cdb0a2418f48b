"""A user's loss inside lossbench's trainer: targets packed as the loss declares, per-sample
values from the user's own computation."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lossbench.errors import ConfigError, LossbenchError, brief
from lossbench.losses.base import LossbenchLoss
from lossbench.user_code import extras_of, instantiate, load_target


@keras.saving.register_keras_serializable(package="lossbench")
class UserLoss(LossbenchLoss):
    """Wraps a user's `keras.losses.Loss` (its `call`) or function `fn(y_true, y_pred)`.

    Keras's `__call__` of this wrapper applies sample weights and the reduction to what the
    user's code returns, exactly as it would to the user's own loss.

    Args:
        loss: the user's loss object or function (parameters already bound).
        extras: extra columns the loss receives at the end of `y_true` (``"group"``: the
            sample's group id).
        target: where the loss came from (`file.py:Name`), for the record.
        params: the parameters it was built with, for the record.
        key: the config key that named the target (`loss.target`): an error in the user's
            code, or values of the wrong kind, become one line naming it. Empty: the user's
            code runs bare (lossbench-check reports its errors itself).
    """

    def __init__(
        self,
        loss: Any,
        extras: tuple[str, ...] = (),
        target: str = "",
        params: dict[str, Any] | None = None,
        name: str = "custom",
        key: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.user, self.extras, self.key = loss, tuple(extras), key
        self.target, self.params = target, dict(params or {})
        self._call = (
            loss
            if not isinstance(loss, keras.losses.Loss)
            else (
                loss.call
                if type(loss).call is not keras.losses.Loss.call
                else lambda y_true, y_pred: loss(y_true, y_pred)  # only its own __call__: a batch's
            )
        )
        # A user's loss declares coupled samples the same way: `batch_coupling = "group"`.
        self.batch_coupling = str(getattr(loss, "batch_coupling", "none"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target": self.target, "params": self.params}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UserLoss:
        """Load the target again (it must be importable where the model is loaded)."""
        keep = {k: config[k] for k in ("name", "reduction", "dtype") if k in config}
        return build_user_loss(config["target"], config.get("params") or {}, **keep)

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        y = np.asarray(y, dtype="float32")
        if "group" not in self.extras:
            return y
        if extra is None:
            raise ValueError("this loss declares extras=('group',) but received no group ids")
        flat = y.reshape(len(y), -1)
        return np.concatenate([flat, np.asarray(extra, "float32").reshape(-1, 1)], axis=1)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if not self.key:  # lossbench-check reports the user's own errors, check by check
            return self._call(y_true, y_pred)
        try:
            values = self._call(y_true, y_pred)
        except Exception as error:
            raise self.failed(error) from None
        return self._checked(values, y_pred)

    def failed(self, error: BaseException) -> Exception:
        """`error`, raised by or while training the user's loss, as one line naming its key."""
        if isinstance(error, LossbenchError) or not self.key:
            return error  # type: ignore[return-value]
        return ConfigError(
            self.key,
            f"a loss that trains on lossbench's batches (`lossbench-check {self.target}` says why)",
            f"{self.target} ({type(error).__name__}: {brief(error)})",
        )

    def _checked(self, values: Any, y_pred: Any) -> Any:
        """The values, when they are one number per sample (or per sample and output)."""
        expected = "a loss returning one value per sample, a tensor of shape (batch,)"
        if values is None:
            raise ConfigError(self.key, expected, f"{self.target} (returned None)")
        kind = type(values).__name__
        try:
            values = keras.ops.convert_to_tensor(values)
            numeric = keras.backend.standardize_dtype(values.dtype).startswith(("float", "int"))
        except Exception:
            numeric = False
        if not numeric:
            raise ConfigError(self.key, expected, f"{self.target} (returned a {kind})")
        shape, batch = tuple(values.shape), y_pred.shape[0]
        if len(shape) and None not in (shape[0], batch) and shape[0] != batch:
            raise ConfigError(
                self.key,
                expected,
                f"{self.target} (returned shape {shape} for a batch of {batch})",
            )
        return values


def build_user_loss(
    target: str, params: dict[str, Any], key: str = "loss", **loss_kwargs: Any
) -> UserLoss:
    """Load, build and adapt a user's loss for lossbench's trainer (`loss_kwargs`: Keras's
    name, reduction, dtype of the wrapper).

    Raises:
        ConfigError: naming `<key>.target` or `<key>.params`.
    """
    obj = load_target(target, f"{key}.target")
    loss = instantiate(obj, dict(params), f"{key}.params")
    return UserLoss(
        loss,
        extras=extras_of(obj),
        target=target,
        params=dict(params),
        key=f"{key}.target",
        **loss_kwargs,
    )
