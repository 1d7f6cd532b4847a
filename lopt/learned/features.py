"""Feature helpers shared by per-parameter learned optimizers."""
import math

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.learned import accumulators as acc

TIMESCALES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)


def tanh_time_features(step: jax.Array, timescales: tuple[float, ...] = TIMESCALES) -> jax.Array:
    """tanh(t / x - 1) for each timescale x: where in training we are, at many scales."""
    return jnp.tanh(step.astype(jnp.float32) / jnp.asarray(timescales, jnp.float32) - 1.0)


def momentum_rms_features(m: jax.Array, rms: jax.Array, eps: float = 1e-6) -> list[jax.Array]:
    """Adam-like features of momentum `m` and second moment `rms` (Metz et al. 2018, Learned optimizers
    that outperform SGD on wall-clock and test loss, arXiv:1810.10180, App. C.1):
    m, rms, m / sqrt(rms + eps) and 1 / sqrt(rms + eps), at every decay of the accumulators."""
    rsqrt_rms = jax.lax.rsqrt(rms + eps)
    return [m, rms, m * rsqrt_rms, rsqrt_rms]


def per_decay(feats: list[jax.Array]) -> list[jax.Array]:
    """Features [*shape, k] (one per accumulator decay) as k arrays shaped like the tensor, in order."""
    return [f[..., i] for f in feats for i in range(f.shape[-1])]


def factored_features(m: jax.Array, fac: acc.Factored, shape: tuple[int, ...]) -> list[jax.Array]:
    """The AdaFactor features of a factored tensor of `shape` with momentum `m` [*shape, decays]
    (Metz et al. 2022, Practical tradeoffs between memory, compute, and performance in learned
    optimizers, arXiv:2203.11860, App. A): its row and column second moments broadcast over the
    tensor, their reciprocal square roots, and the momentum preconditioned by them."""
    dims = acc.factored_dims(shape)
    assert dims is not None and fac.v_row is not None and fac.v_col is not None, "a factored tensor"
    d1, d0 = dims
    full = shape + fac.v_row.shape[-1:]
    row = jnp.broadcast_to(jnp.expand_dims(fac.v_row, d0), full)
    col = jnp.broadcast_to(jnp.expand_dims(fac.v_col, d1), full)
    row_factor, col_factor = acc.row_col_factors(fac, shape)
    return [row, col, jax.lax.rsqrt(row + 1e-8), jax.lax.rsqrt(col + 1e-8), m * row_factor * col_factor]


def clip_log_abs(x: jax.Array) -> jax.Array:
    """Magnitude of a per-tensor statistic, squashed: 0.5 * clip(log|x|, -5, 5) (Metz et al. 2022,
    Practical tradeoffs between memory, compute, and performance in learned optimizers,
    arXiv:2203.11860, App. C.1)."""
    return 0.5 * jnp.clip(jnp.log(1e-8 + jnp.abs(x)), -5.0, 5.0)


NUM_TENSOR_STATISTICS = 15


def tensor_statistics(p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array) -> list[jax.Array]:
    """15 scalar statistics of one tensor with parameters `p`, gradient `g`, momentum `m` and second
    moment `v` (any trailing decay axis is averaged over too): for each of m, v, p, g the squashed
    mean, its sign and the squashed variance, the squashed mean |g|, and +-1 flags for scalars and
    vectors (Practical tradeoffs, App. C.1, the per-tensor features of the hierarchical optimizers)."""
    feats = []
    for x in (m, v, p, g):
        mean = jnp.mean(x)
        feats += [clip_log_abs(mean), jnp.sign(mean), clip_log_abs(jnp.mean(jnp.square(x - mean)))]
    feats.append(clip_log_abs(jnp.mean(jnp.abs(g))))
    feats += [jnp.asarray(1.0 if p.ndim == 0 else -1.0), jnp.asarray(1.0 if p.ndim == 1 else -1.0)]
    return feats


def direction_magnitude_step(direction: jax.Array, magnitude: jax.Array, step_mult: float,
                             exp_mult: float) -> jax.Array:
    """The step of a per-parameter MLP with outputs direction d and magnitude m:
    d * exp(m * exp_mult) * step_mult, small temperatures keeping initial steps small (Metz et al. 2018,
    App. C.1)."""
    return direction * jnp.exp(magnitude * exp_mult) * step_mult


def second_moment_scale(features: jax.Array, axes: tuple[int, ...], eps: float = 1e-5) -> jax.Array:
    """Per-feature factor that gives each feature unit second moment over a tensor's `axes`."""
    return jax.lax.rsqrt(eps + jnp.mean(jnp.square(features), axis=axes))


def second_moment_scales(features: list[jax.Array], eps: float = 1e-5) -> jax.Array:
    """`second_moment_scale` of each of several same-shaped features over all their axes, [F],
    in one pass: XLA reads the tensor once instead of once per feature (on CPU a sixth less time
    per vmapped small_fc_lopt update and a third less compile time, docs/performance.md)."""
    sums = _sums_of_squares(tuple(features))
    return jax.lax.rsqrt(eps + jnp.stack(sums) / math.prod(features[0].shape))


@jax.custom_jvp
def _sums_of_squares(features: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """sum(f ** 2) of each feature, as one variadic reduction."""
    axes = tuple(range(features[0].ndim))
    return jax.lax.reduce(tuple(jnp.square(f) for f in features), (jnp.float32(0),) * len(features),
                          lambda a, b: tuple(x + y for x, y in zip(a, b)), axes)


@_sums_of_squares.defjvp
def _sums_of_squares_jvp(primals, tangents):
    """A variadic reduction has no transpose rule: derivatives (tbptt, merged) take one sum per
    feature."""
    (features,), (dots,) = primals, tangents
    return _sums_of_squares(features), tuple(jnp.sum(2.0 * f * t) for f, t in zip(features, dots))


def decay_to_param(decay: jax.Array) -> jax.Array:
    """Decays are learned in log(1 - decay) / 10 space, so steps move timescales smoothly."""
    return jnp.log(1.0 - decay) / 10.0


def param_to_decay(x: jax.Array) -> jax.Array:
    return 1.0 - jnp.exp(10.0 * x)


def check_decays(name: str, decays: tuple[float, ...]) -> None:
    """An accumulator decay list must be non-empty with every decay in [0, 1)."""
    check(len(decays) > 0 and all(0 <= d < 1 for d in decays), name, decays, "a non-empty list of decays in [0, 1)")
