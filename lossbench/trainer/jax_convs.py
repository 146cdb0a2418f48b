"""Convolutions written in the one layout XLA's CPU backend runs fast, inside loops too.

XLA's CPU backend runs a convolution with its fast (Eigen) kernels only in one layout: input
batch-spatial-feature, kernel spatial-input-output, output batch-spatial-feature. It rewrites
other layouts into that one with transposes, but only in a program's top level
(`ConvCanonicalization` visits the entry computation), not inside a loop's body. The gradient
convolutions that autodiff makes for a step come in other layouts, so inside the runner's loop
they fell to a generic kernel, 4-5x slower per step (`make bench`'s small CNN).
`canonical_convolutions` does that rewrite itself, on the step's jaxpr, before XLA sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax import lax
from jax.extend.core import Jaxpr, Literal
from jax.extend.core.primitives import conv_general_dilated_p


def canonical_layout(n_spatial: int) -> lax.ConvDimensionNumbers:
    """The layout of XLA's fast CPU convolutions, for `n_spatial` spatial dimensions."""
    spatial = tuple(range(1, n_spatial + 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, n_spatial + 1, *spatial),
        rhs_spec=(n_spatial + 1, n_spatial, *range(n_spatial)),
        out_spec=(0, n_spatial + 1, *spatial),
    )


def _canonical_conv(lhs: Any, rhs: Any, dimension_numbers: Any, **params: Any) -> Any:
    """One convolution as transposes into the canonical layout, the convolution, and a
    transpose back: the same values, which XLA's CPU backend computes with its fast kernels."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers  # (batch|out, feature|in, *spatial)
    canonical = canonical_layout(len(lhs_spec) - 2)
    out = conv_general_dilated_p.bind(
        lax.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])),
        lax.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])),
        dimension_numbers=canonical,
        **params,
    )
    order = (out_spec[0], *out_spec[2:], out_spec[1])  # the original dimension of each axis
    return lax.transpose(out, tuple(order.index(d) for d in range(len(order))))


def _rewritten(eqn: Any) -> bool:
    """Whether `eqn` is a convolution in another layout than the canonical one. Grouped ones
    (depthwise layers, or a vmapped kernel) have no fast CPU kernel in any layout: left alone."""
    if eqn.primitive is not conv_general_dilated_p:
        return False
    p = eqn.params
    canonical = tuple(canonical_layout(len(p["dimension_numbers"].lhs_spec) - 2))
    grouped = p["feature_group_count"] != 1 or p["batch_group_count"] != 1
    return not grouped and tuple(p["dimension_numbers"]) != canonical


def _evaluate(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """Run `jaxpr` on `args` (traced values), binding each equation's primitive as tracing it
    would, except convolutions, which go through `_canonical_conv`; calls of jitted functions
    are evaluated inline so that the convolutions inside them are rewritten too."""
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        if _rewritten(eqn):
            outs = [_canonical_conv(*values, **eqn.params)]
        elif eqn.primitive.name in ("jit", "pjit"):
            inner = eqn.params["jaxpr"]
            outs = _evaluate(inner.jaxpr, inner.consts, values)
        else:
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outs = [outs]
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def _equations(jaxpr: Jaxpr) -> list[Any]:
    eqns = []
    for eqn in jaxpr.eqns:
        eqns.append(eqn)
        if eqn.primitive.name in ("jit", "pjit"):
            eqns += _equations(eqn.params["jaxpr"].jaxpr)
    return eqns


def canonical_convolutions(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with every convolution it computes, its gradients' included, in the canonical layout.

    The values are those of `fn` (transposes only move data). The function is traced to a jaxpr
    at each call, so use it inside a jitted function, where that happens once per compilation;
    a function with nothing to rewrite is then simply called, and compiles as it did.
    """

    def rewritten(*args: Any) -> Any:
        flat, tree = jax.tree.flatten(args)
        closed, shapes = jax.make_jaxpr(
            lambda *leaves: fn(*jax.tree.unflatten(tree, leaves)), return_shape=True
        )(*flat)
        if not any(_rewritten(eqn) for eqn in _equations(closed.jaxpr)):
            return fn(*args)
        outs = _evaluate(closed.jaxpr, closed.consts, flat)
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    return rewritten
