"""A JAX step's slow spots on XLA's CPU backend, rewritten into forms with the same values.

Two operations of a CNN's training step run several times slower inside the runner's loop than
they need to (measured on `make bench`'s small CNN; docs/benchmarks.md):

- *Convolutions.* XLA's CPU backend runs a convolution with its fast (Eigen) kernels only in one
  layout: input batch-spatial-feature, kernel spatial-input-output, output batch-spatial-feature.
  It rewrites other layouts into that one with transposes, but only in a program's top level
  (`ConvCanonicalization` visits the entry computation), not in a loop's body. Autodiff's
  gradient convolutions come in other layouts, so in the loop they fell to a generic kernel.
  Here each is written as transposes around the canonical convolution.
- *Max pooling's gradient* (`select_and_scatter_add`). XLA's CPU backend expands it into a
  reduce-window over the operand and four index arrays it materializes, then a scatter. When
  the windows tile the input (stride equal to the window, no padding), the gradient is each
  window's incoming value placed at the window's first maximum: a one-hot of an argmax. Here it
  is written so. (With a NaN in a window the two may place it differently; such a step's
  gradient is not finite anyway, and training stops there as diverged.)

`rewritten_for_cpu` applies both to a function's jaxpr before XLA sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import Jaxpr, Literal, jaxpr_as_fun
from jax.extend.core.primitives import conv_general_dilated_p, select_and_scatter_add_p


def canonical_layout(n_spatial: int) -> lax.ConvDimensionNumbers:
    """The layout of XLA's fast CPU convolutions, for `n_spatial` spatial dimensions."""
    spatial = tuple(range(1, n_spatial + 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, n_spatial + 1, *spatial),
        rhs_spec=(n_spatial + 1, n_spatial, *range(n_spatial)),
        out_spec=(0, n_spatial + 1, *spatial),
    )


def _is_slow_convolution(params: dict[str, Any], shapes: Sequence[tuple[int, ...]]) -> bool:
    # Grouped convolutions (depthwise layers, or a vmapped kernel) have no fast CPU kernel in
    # any layout: left as they are.
    dims = params["dimension_numbers"]
    grouped = params["feature_group_count"] != 1 or params["batch_group_count"] != 1
    return not grouped and tuple(dims) != tuple(canonical_layout(len(dims.lhs_spec) - 2))


def _canonical_convolution(lhs: Any, rhs: Any, dimension_numbers: Any, **params: Any) -> Any:
    """A convolution as transposes into the canonical layout, the convolution, and a transpose
    back."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers  # (batch|out, feature|in, *spatial)
    out = conv_general_dilated_p.bind(
        lax.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])),
        lax.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])),
        dimension_numbers=canonical_layout(len(lhs_spec) - 2),
        **params,
    )
    order = (out_spec[0], *out_spec[2:], out_spec[1])  # the original dimension of each axis
    return lax.transpose(out, tuple(order.index(d) for d in range(len(order))))


def _is_tiled_max_pool_gradient(params: dict[str, Any], shapes: Sequence[tuple[int, ...]]) -> bool:
    window, strides = tuple(params["window_dimensions"]), tuple(params["window_strides"])
    return (
        params["select_prim"] is lax.ge_p
        and window == strides
        and all(low == high == 0 for low, high in params["padding"])
        and all(d % w == 0 for d, w in zip(shapes[1], window, strict=True))
    )


def _tiled_max_pool_gradient(source: Any, operand: Any, window_dimensions: Any, **_: Any) -> Any:
    """`select_and_scatter_add` with `ge` over windows that tile `operand`: each of `source`'s
    values goes to the first maximum of its window."""
    shape, window = operand.shape, tuple(window_dimensions)
    tiles = tuple(d // w for d, w in zip(shape, window, strict=True))
    n = len(shape)
    # (tile_0, offset_0, tile_1, offset_1, ...) -> (tile_0, tile_1, ..., offsets flattened)
    split = operand.reshape([size for pair in zip(tiles, window, strict=True) for size in pair])
    order = (*range(0, 2 * n, 2), *range(1, 2 * n, 2))
    windows = lax.transpose(split, order).reshape(*tiles, -1)
    first_max = jnp.argmax(windows, axis=-1)  # the first of equal maxima, as `ge` selects
    placed = jax.nn.one_hot(first_max, windows.shape[-1], dtype=source.dtype) * source[..., None]
    inverse = tuple(order.index(axis) for axis in range(2 * n))
    return lax.transpose(placed.reshape(*tiles, *window), inverse).reshape(shape)


# primitive: (whether an equation with these params and operand shapes is rewritten, the rewrite)
RULES: dict[Any, tuple[Callable[..., bool], Callable[..., Any]]] = {
    conv_general_dilated_p: (_is_slow_convolution, _canonical_convolution),
    select_and_scatter_add_p: (_is_tiled_max_pool_gradient, _tiled_max_pool_gradient),
}


def _rule(eqn: Any) -> Callable[..., Any] | None:
    """The rewrite of `eqn`, or None when it is left as it is."""
    applies, rewrite = RULES.get(eqn.primitive, (None, None))
    shapes = [tuple(v.aval.shape) for v in eqn.invars]
    return rewrite if applies is not None and applies(eqn.params, shapes) else None


def _is_call(eqn: Any) -> bool:
    return eqn.primitive.name in ("jit", "pjit")


def _evaluate(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """Run `jaxpr` on `args` (traced values), binding each equation's primitive as tracing it
    would, or its rewrite; calls of jitted functions are evaluated inline so that what they
    compute is rewritten too."""
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        rewrite = _rule(eqn)
        if rewrite is not None:
            outs = [rewrite(*values, **eqn.params)]
        elif _is_call(eqn):
            inner = eqn.params["jaxpr"]
            outs = _evaluate(inner.jaxpr, inner.consts, values)
        else:
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outs = [outs]
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def _rewrites_any(jaxpr: Jaxpr) -> bool:
    return any(
        _rule(eqn) is not None or (_is_call(eqn) and _rewrites_any(eqn.params["jaxpr"].jaxpr))
        for eqn in jaxpr.eqns
    )


def rewritten_for_cpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its slow convolutions and max-pool gradients in their fast forms (see above).

    The values are those of `fn`. The function is traced to a jaxpr at each call, so use it
    inside a jitted function, where that happens once per compilation; a jaxpr with nothing to
    rewrite is evaluated as it is (a quarter of the cost of tracing `fn` again, for the MLP's
    step), and compiles as `fn` did.
    """

    def rewritten(*args: Any) -> Any:
        flat, tree = jax.tree.flatten(args)
        closed, shapes = jax.make_jaxpr(
            lambda *leaves: fn(*jax.tree.unflatten(tree, leaves)), return_shape=True
        )(*flat)
        if _rewrites_any(closed.jaxpr):
            outs = _evaluate(closed.jaxpr, closed.consts, flat)
        else:
            outs = jaxpr_as_fun(closed)(*flat)
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    return rewritten
