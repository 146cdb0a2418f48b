"""Keras's Adam with each moment of every variable in one flat vector.

`Adam.stateless_apply` updates each variable in kernels of its own: XLA's CPU backend runs the
default MLP's 6 variables as 24 small element-wise kernels, about a quarter of its step, most
of it their start-up. Here the first and second moments of all variables are one vector each,
so the moments take one kernel apiece and each variable one more for its new value: the default
MLP's step runs about 30% faster (docs/benchmarks.md). The arithmetic is `Adam.update_step`'s,
operation for operation, so the weights, losses and tables are bit for bit the same.

Only Keras's plain Adam on float32 variables takes this path (`FlatAdam.fits`); any other
optimizer or option goes through `stateless_apply`.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

# Adam's options this path leaves out: each must keep the value that turns it off.
_OFF = {
    "amsgrad": False,
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class FlatAdam:
    """Adam's update over flat moments; state ``[iterations, learning_rate, m, v]``.

    Args:
        optimizer: a built `keras.optimizers.Adam` that `fits`.
        shapes: the shapes of the trainable variables, in the optimizer's order.
    """

    def __init__(self, optimizer: Any, shapes: list[tuple[int, ...]]) -> None:
        self.beta_1, self.beta_2 = optimizer.beta_1, optimizer.beta_2
        self.epsilon = optimizer.epsilon
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [math.prod(s) for s in self.shapes]

    @staticmethod
    def fits(optimizer: Any, variables: list[Any]) -> bool:
        """Whether `optimizer` is Keras's Adam with none of the options left out (`_OFF`), a
        constant learning rate, and `variables` are float32 without constraints."""
        import keras

        if type(optimizer) is not keras.optimizers.Adam:
            return False
        config = optimizer.get_config()
        if any(config.get(key) != value for key, value in _OFF.items()):
            return False
        if not isinstance(optimizer._learning_rate, keras.Variable):  # a schedule
            return False
        return all(
            v.dtype == "float32"
            and v.constraint is None
            and not getattr(v, "overwrite_with_gradient", False)
            for v in variables
        )

    def flatten(self, values: list[Any]) -> list[Any]:
        """The flat state from `optimizer.variables`' values (iterations, learning rate, then
        each variable's momentum and velocity)."""
        iterations, learning_rate, *moments = values
        shapes = [tuple(np.shape(a)) for a in moments]
        if shapes != [s for s in self.shapes for _ in range(2)]:  # another Keras's layout
            raise ValueError(f"Adam's variables are not momentum, velocity per variable: {shapes}")
        m = np.concatenate([np.ravel(a) for a in moments[0::2]]).astype(np.float32)
        v = np.concatenate([np.ravel(a) for a in moments[1::2]]).astype(np.float32)
        return [iterations, learning_rate, m, v]

    def unflatten(self, state: list[Any]) -> list[Any]:
        """`optimizer.variables`' values from the flat state (the inverse of `flatten`)."""
        iterations, learning_rate, m, v = state
        values = [iterations, learning_rate]
        for m_k, v_k in zip(self._split(m), self._split(v), strict=True):
            values += [m_k, v_k]
        return values

    def apply(self, state: list[Any], grads: list[Any], variables: list[Any]) -> tuple[list, list]:
        """One Adam step: the new variables and state (`Adam.update_step` for every variable,
        then the iteration count)."""
        iterations, learning_rate, m, v = state
        g = jnp.concatenate([jnp.ravel(x) for x in grads])
        lr = learning_rate.astype(jnp.float32)
        local_step = (iterations + 1).astype(jnp.float32)
        beta_1_power = jnp.power(jnp.float32(self.beta_1), local_step)
        beta_2_power = jnp.power(jnp.float32(self.beta_2), local_step)
        alpha = lr * jnp.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = m + (g - m) * (1 - self.beta_1)
        v = v + (jnp.square(g) - v) * (1 - self.beta_2)
        step = (m * alpha) / (jnp.sqrt(v) + self.epsilon)
        new = [x - s for x, s in zip(variables, self._split(step), strict=True)]
        return new, [iterations + 1, learning_rate, m, v]

    def _split(self, flat: Any) -> list[Any]:
        """`flat` cut into the variables' shapes."""
        ends = np.cumsum(self.sizes)
        return [
            flat[end - size : end].reshape(shape)
            for end, size, shape in zip(ends, self.sizes, self.shapes, strict=True)
        ]
