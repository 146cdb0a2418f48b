"""The JAX runner's rewrites for XLA's CPU backend: the same values and gradients as the
convolutions and max-pool gradients they replace; inside a compiled loop, only convolutions in
XLA's fast CPU layout and no scatter."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lossbench.trainer.jax_rewrites import rewritten_for_cpu

CANONICAL_2D = "b01f_01io->b01f"  # the layout XLA's CPU backend runs with its fast kernels

# (input shape, kernel shape, layouts, strides, padding, input dilation, kernel dilation)
CASES = [
    ((2, 3, 9, 8), (5, 3, 3, 3), ("NCHW", "OIHW", "NCHW"), (1, 1), "SAME", None, None),
    ((2, 9, 8, 3), (3, 3, 5, 3), ("NHWC", "HWOI", "NCHW"), (2, 1), "VALID", None, (1, 2)),
    ((9, 8, 3, 2), (3, 2, 3, 5), ("HWCN", "HWIO", "NHWC"), (1, 1), [(1, 0), (2, 1)], (2, 1), None),
    ((2, 4, 11), (6, 4, 3), ("NCH", "OIH", "NHC"), (2,), "SAME", None, None),
    ((1, 2, 5, 6, 7), (4, 2, 3, 2, 2), ("NCDHW", "OIDHW", "NCDHW"), (1, 1, 1), "SAME", None, None),
]  # fmt: skip


def _conv_fn(case):
    _, _, layouts, strides, padding, lhs_dil, rhs_dil = case
    return lambda x, k: lax.conv_general_dilated(
        x, k, strides, padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
        dimension_numbers=layouts,
    )  # fmt: skip


def _inputs(case):
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.normal(size=case[0]), jnp.float32),
            jnp.asarray(rng.normal(size=case[1]), jnp.float32))  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c[2]))
def test_values_and_gradients_are_those_of_the_convolution(case):
    conv = _conv_fn(case)
    x, k = _inputs(case)

    def loss(x, k):
        return jnp.sum(jnp.sin(conv(x, k)))

    expected = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, k)
    got = jax.jit(rewritten_for_cpu(jax.value_and_grad(loss, argnums=(0, 1))))(x, k)
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=2e-5, atol=2e-5)
    # An independent reference for the values: NumPy float64 for the first case's layout.
    if case[2] == ("NCHW", "OIHW", "NCHW"):
        xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
        kk = np.asarray(k, np.float64)
        ref = np.zeros((2, 5, 9, 8))
        for i in range(9):
            for j in range(8):
                ref[:, :, i, j] = np.einsum("bchw,ochw->bo", xp[:, :, i : i + 3, j : j + 3], kk)
        out = jax.jit(rewritten_for_cpu(conv))(x, k)
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)


def _loop_dim_labels(step):
    """The layouts of the convolutions XLA compiles for `step` run in a loop."""
    x, k = _inputs(CASES[1])

    def run(x, k):
        def body(_, carry):
            x, k = carry
            gx, gk = step(x, k)
            return x - 0.1 * gx, k - 0.1 * gk

        return lax.fori_loop(0, 3, body, (x, k))

    hlo = jax.jit(run).lower(x, k).compile().as_text()
    return re.findall(r"convolution\(.*?dim_labels=([^,\s]+)", hlo)


def test_inside_a_loop_every_convolution_has_the_fast_layout():
    conv = _conv_fn(CASES[1])
    step = jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), argnums=(0, 1))
    plain = _loop_dim_labels(step)
    assert any(label != CANONICAL_2D for label in plain)  # what XLA leaves in a loop
    rewritten = _loop_dim_labels(rewritten_for_cpu(step))
    assert len(rewritten) == len(plain) >= 3  # forward, input and kernel gradients
    assert set(rewritten) == {CANONICAL_2D}


def test_a_function_without_convolutions_is_traced_unchanged():
    def mlp(w, x):
        return jnp.sum(jax.nn.relu(x @ w) ** 2)

    w, x = jnp.ones((4, 3)), jnp.ones((2, 4))
    grad = jax.grad(mlp)
    assert str(jax.make_jaxpr(rewritten_for_cpu(grad))(w, x)) == str(jax.make_jaxpr(grad)(w, x))


def test_convolutions_inside_jitted_calls_and_not_grouped_ones_are_rewritten():
    x, k = _inputs(CASES[0])
    inner = jax.jit(_conv_fn(CASES[0]))
    grouped_k = k[:3, :1]  # 3 groups of 1 input channel each: no fast kernel in any layout

    def fn(x, k):
        grouped = lax.conv_general_dilated(
            x, grouped_k, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=3,
        )  # fmt: skip
        return inner(x, k)[:, :3] + grouped[:, :3]

    jaxpr = jax.make_jaxpr(rewritten_for_cpu(fn))(x, k)
    convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert sorted(e.params["feature_group_count"] for e in convs) == [1, 3]
    for e in convs:
        n_spatial = len(e.params["dimension_numbers"].lhs_spec) - 2
        canonical = e.params["dimension_numbers"] == lax.ConvDimensionNumbers(
            (0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)
        )
        assert n_spatial == 2 and canonical == (e.params["feature_group_count"] == 1)
    np.testing.assert_allclose(
        np.asarray(jax.jit(rewritten_for_cpu(fn))(x, k)), np.asarray(fn(x, k)), rtol=2e-5
    )


def _max_pool(x, window, strides, padding="VALID"):
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, padding)


def _first_max_scatter(source, operand, window):
    """NumPy float64: each window's source value at the window's first maximum (C order)."""
    out = np.zeros(operand.shape)
    for tile in np.ndindex(*source.shape):
        corner = [t * w for t, w in zip(tile, window, strict=True)]
        block = operand[tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))]
        offset = np.unravel_index(np.argmax(block), block.shape)
        out[tuple(c + o for c, o in zip(corner, offset, strict=True))] += source[tile]
    return out


@pytest.mark.parametrize("window", [(1, 2, 2, 1), (2, 1, 3, 2), (1, 4)])
def test_the_max_pool_gradient_goes_to_each_windows_first_maximum(window):
    rng = np.random.default_rng(1)
    shape = (4, 6, 6, 4) if len(window) == 4 else (3, 8)
    # Rounded values and a block of zeros, as ReLU gives: windows with tied maxima.
    x = np.round(rng.normal(size=shape), 1).astype(np.float32)
    x[:2] = np.maximum(x[:2], 0.0)
    g = rng.normal(size=[d // w for d, w in zip(shape, window, strict=True)]).astype(np.float32)

    def pooled_dot(x):
        return jnp.sum(_max_pool(x, window, window) * g)

    expected = jax.jit(jax.grad(pooled_dot))(x)  # XLA's select-and-scatter
    got = jax.jit(rewritten_for_cpu(jax.grad(pooled_dot)))(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(got), _first_max_scatter(g, x, window))


def test_max_pools_whose_windows_do_not_tile_the_input_are_left_as_they_are():
    x = jnp.ones((2, 5, 5, 3))
    for window, strides, padding in [
        ((1, 3, 3, 1), (1, 2, 2, 1), "VALID"),  # overlapping
        ((1, 2, 2, 1), (1, 2, 2, 1), "SAME"),
    ]:  # padded
        grad = jax.grad(lambda x: jnp.sum(_max_pool(x, window, strides, padding)))  # noqa: B023
        names = [e.primitive.name for e in jax.make_jaxpr(rewritten_for_cpu(grad))(x).eqns]
        assert "select_and_scatter_add" in names


def test_inside_a_loop_a_max_pool_gradient_compiles_without_a_scatter():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(8, 8, 8, 4)), jnp.float32)
    grad = jax.grad(lambda x: jnp.sum(_max_pool(x, (1, 2, 2, 1), (1, 2, 2, 1)) ** 2))

    def hlo(step):
        def run(x):
            return lax.fori_loop(0, 3, lambda _, x: x - 0.1 * step(x), x)

        return jax.jit(run).lower(x).compile().as_text()

    assert "scatter(" in hlo(grad)  # what XLA's CPU backend makes of select-and-scatter
    assert "scatter(" not in hlo(rewritten_for_cpu(grad))
