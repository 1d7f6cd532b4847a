"""fc_lopt: the per-parameter MLP learned optimizer of seed 001, Appendix C.1.

Each parameter gets 31 features: its gradient and value, and for momentum and second-moment
accumulators at decays 0.5, 0.9, 0.99, 0.999, 0.9999 the Adam-like terms m, rms, m/sqrt(rms) and
1/sqrt(rms) (20), plus tanh(t / x - 1) at 9 timescales x log-spaced over [3, 300k]. All but the time
features are normalized to unit second moment over each tensor. A ReLU MLP with 32 hidden units
(one hidden layer in the paper, ~1k meta-parameters: 1090) outputs a direction d and magnitude m,
and the step is step_mult * d * exp(exp_mult * m) with both temperatures 1e-3.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned import accumulators as acc
from lopt.learned.features import (check_decays, direction_magnitude_step, momentum_rms_features,
                                   second_moment_scale, tanh_time_features)
from lopt.learned.mlp import check_hidden, init_mlp

Params = Any
TIMESCALES = tuple(float(x) for x in np.geomspace(3.0, 300_000.0, 9))  # seed 001 App. C.1


class FCState(NamedTuple):
    mom: Params  # leaves [*shape, decays]
    rms: Params  # leaves [*shape, decays]
    iteration: jax.Array


def tensor_features(p: jax.Array, g: jax.Array, m: jax.Array, rms: jax.Array) -> jax.Array:
    """The normalizable features of one tensor, stacked on a last axis: [*shape, 2 + 4 * decays]."""
    return jnp.concatenate([g[..., None], p[..., None], *momentum_rms_features(m, rms)], axis=-1)


@dataclass(frozen=True)
class FCLOpt:
    """Per-parameter MLP learned optimizer with momentum/rms features at 5 decays (seed 001)."""

    hidden_size: int = 32
    hidden_layers: int = 1
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    decays: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 0.9999)

    def __post_init__(self):
        check_hidden(self.hidden_size, self.hidden_layers)
        check_decays("decays", self.decays)

    @property
    def num_features(self) -> int:
        return 2 + 4 * len(self.decays) + len(TIMESCALES)

    def init_theta(self, key: jax.Array) -> Params:
        return {"nn": init_mlp(key, [self.num_features] + [self.hidden_size] * self.hidden_layers + [2])}

    def init(self, theta: Params, params: Params) -> FCState:
        zeros = acc.zeros_like_with_decays(params, len(self.decays))
        return FCState(mom=zeros, rms=zeros, iteration=jnp.zeros((), jnp.int32))

    def _step(self, nn: Params, time_bias: jax.Array, p, g, m, rms) -> jax.Array:
        feats = tensor_features(p, g, m, rms)
        # The time features are constant over a tensor: they enter the first layer as a bias, and
        # the per-tensor normalization is folded into its weights (same numbers, no normalized copy).
        scale = second_moment_scale(feats, tuple(range(p.ndim)))
        h = feats @ (nn["w0"][: feats.shape[-1]] * scale[:, None]) + time_bias
        for layer in range(1, self.hidden_layers + 1):
            h = jax.nn.relu(h) @ nn[f"w{layer}"] + nn[f"b{layer}"]
        return p - direction_magnitude_step(h[..., 0], h[..., 1], self.step_mult, self.exp_mult)

    def update(self, theta: Params, state: FCState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, FCState]:
        decays = jnp.asarray(self.decays, jnp.float32)
        mom = acc.momentum(decays, state.mom, grads)
        rms = acc.second_moment(decays, state.rms, grads)
        nn = theta["nn"]
        n_norm = self.num_features - len(TIMESCALES)
        time_bias = tanh_time_features(state.iteration, TIMESCALES) @ nn["w0"][n_norm:] + nn["b0"]
        new_params = jax.tree_util.tree_map(lambda *leaves: self._step(nn, time_bias, *leaves),
                                            params, grads, mom, rms)
        return new_params, FCState(mom, rms, state.iteration + 1)
