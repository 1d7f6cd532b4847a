"""Gradient statistics kept per parameter at several decays at once (decay axis last).

Momentum, second moment and AdaFactor-style factored second moments, as used by the learned
optimizers of Metz et al. 2018, Learned optimizers that outperform SGD on wall-clock and test loss
(arXiv:1810.10180), and Metz et al. 2022, Practical tradeoffs between memory, compute, and
performance in learned optimizers (arXiv:2203.11860). Decays are traced values so they can be
meta-learned.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lopt.base import Params


def _ema(decay: jax.Array, old: jax.Array, new: jax.Array) -> jax.Array:
    return decay * old + (1.0 - decay) * new


def momentum(decays: jax.Array, m: Params, grads: Params) -> Params:
    """EMA of gradients: leaves [*shape, len(decays)]."""
    return jax.tree_util.tree_map(lambda a, g: _ema(decays, a, g[..., None]), m, grads)


def second_moment(decays: jax.Array, v: Params, grads: Params) -> Params:
    """EMA of squared gradients with decays clipped to [0, 1]."""
    d = jnp.clip(decays, 0.0, 1.0)
    return jax.tree_util.tree_map(lambda a, g: _ema(d, a, jnp.square(g)[..., None]), v, grads)


def zeros_like_with_decays(params: Params, num_decays: int) -> Params:
    return jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape + (num_decays,), jnp.float32), params)


def safe_rsqrt(x: jax.Array) -> jax.Array:
    return jax.lax.rsqrt(jnp.maximum(x, 1e-9))


def factored_dims(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(second largest, largest) dims of a tensor of rank >= 2, as AdaFactor factors; else None."""
    if len(shape) < 2:
        return None
    order = np.argsort(shape)
    return int(order[-2]), int(order[-1])


class Factored(NamedTuple):
    """AdaFactor accumulators of one tensor: row/col stats if factored, else a full `diag`
    (the unused fields are None)."""

    v_row: jax.Array | None
    v_col: jax.Array | None
    v_diag: jax.Array | None


def factored_init(p: jax.Array, num_decays: int) -> Factored:
    dims = factored_dims(p.shape)
    if dims is None:
        return Factored(None, None, jnp.zeros(p.shape + (num_decays,), jnp.float32))
    d1, d0 = dims
    row = np.delete(p.shape, d0).tolist() + [num_decays]
    col = np.delete(p.shape, d1).tolist() + [num_decays]
    return Factored(jnp.zeros(row, jnp.float32), jnp.zeros(col, jnp.float32), None)


def row_col_factors(acc: Factored, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Preconditioner factors of a factored tensor, broadcastable to [*shape, decays]."""
    dims = factored_dims(shape)
    assert dims is not None and acc.v_row is not None and acc.v_col is not None, "a factored tensor"
    d1, d0 = dims
    reduced_d1 = d1 - 1 if d1 > d0 else d1
    row_col_mean = jnp.mean(acc.v_row, axis=reduced_d1, keepdims=True)
    row_factor = safe_rsqrt(acc.v_row / (row_col_mean + 1e-9))
    col_factor = safe_rsqrt(acc.v_col)
    return jnp.expand_dims(row_factor, d0), jnp.expand_dims(col_factor, d1)


def factored_update(decays: jax.Array, acc: Factored, g: jax.Array) -> tuple[Factored, jax.Array]:
    """New accumulators and the AdaFactor-preconditioned gradient [*shape, decays]."""
    d = jnp.clip(decays, 0.0, 1.0)
    grad_sqr = jnp.square(g)[..., None] + 1e-30
    dims = factored_dims(g.shape)
    if dims is None:
        assert acc.v_diag is not None, "an unfactored tensor keeps its full second moment"
        v = _ema(d, acc.v_diag, grad_sqr)
        return acc._replace(v_diag=v), g[..., None] * safe_rsqrt(v + 1e-9)
    d1, d0 = dims
    assert acc.v_row is not None and acc.v_col is not None, "a factored tensor keeps row and column moments"
    acc = acc._replace(
        v_row=_ema(d, acc.v_row, jnp.mean(grad_sqr, axis=d0)),
        v_col=_ema(d, acc.v_col, jnp.mean(grad_sqr, axis=d1)),
    )
    row, col = row_col_factors(acc, g.shape)
    return acc, g[..., None] * row * col
