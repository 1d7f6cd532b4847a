"""fc_lopt: the per-parameter MLP learned optimizer of Metz et al. 2018, Learned optimizers that
outperform SGD on wall-clock and test loss (arXiv:1810.10180), Appendix C.1.

Each parameter gets 31 features: its gradient and value, and for momentum and second-moment
accumulators at decays 0.5, 0.9, 0.99, 0.999, 0.9999 the Adam-like terms m, rms, m/sqrt(rms) and
1/sqrt(rms) (20), plus tanh(t / x - 1) at 9 timescales x log-spaced over [3, 300k]. All but the time
features are normalized to unit second moment over each tensor. A ReLU MLP with 32 hidden units
(one hidden layer in the paper, ~1k meta-parameters: 1090) outputs a direction d and magnitude m,
and the step is step_mult * d * exp(exp_mult * m) with both temperatures 1e-3.

The switches `momentum`, `rms` and `time` drop feature groups for the paper's ablation (§4.5,
Fig. 7): without momentum a decay contributes rms and 1/sqrt(rms); without rms, m alone; without
either, none (the gradient and the value remain); without time, no tanh features.
"""
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lopt.base import Params, PRNGKey, Theta
from lopt.learned import accumulators as acc
from lopt.learned.features import (
    check_decays,
    direction_magnitude_step,
    momentum_rms_features,
    second_moment_scale,
    tanh_time_features,
)
from lopt.learned.mlp import check_hidden, init_mlp

TIMESCALES = tuple(float(x) for x in np.geomspace(3.0, 300_000.0, 9))  # Metz et al. 2018, App. C.1


class FCState(NamedTuple):
    mom: Params  # leaves [*shape, decays]
    rms: Params  # leaves [*shape, decays]
    iteration: jax.Array


def feature_groups(momentum: bool, second_moment: bool) -> tuple[int, ...]:
    """Which of `momentum_rms_features` (m, rms, m / sqrt(rms), 1 / sqrt(rms)) a decay contributes:
    all four with both accumulators' features, rms and 1 / sqrt(rms) without momentum, m alone
    without the second moment, none without either."""
    if momentum and second_moment:
        return (0, 1, 2, 3)
    return (0,) if momentum else (1, 3) if second_moment else ()


def tensor_features(p: jax.Array, g: jax.Array, m: jax.Array, rms: jax.Array,
                    groups: tuple[int, ...] = (0, 1, 2, 3)) -> jax.Array:
    """The normalizable features of one tensor, stacked on a last axis: [*shape, 2 + len(groups) *
    decays] (`groups`: which `momentum_rms_features` each decay contributes)."""
    feats = momentum_rms_features(m, rms)
    return jnp.concatenate([g[..., None], p[..., None], *(feats[i] for i in groups)], axis=-1)


@dataclass(frozen=True)
class FCLOpt:
    """Per-parameter MLP learned optimizer with momentum/rms features at 5 decays (Metz et al. 2018)."""

    hidden_size: int = 32
    hidden_layers: int = 1
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    decays: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 0.9999)
    momentum: bool = True  # the momentum features (the ablation's "No Mom" turns them off)
    rms: bool = True  # the second-moment features ("No RMS")
    time: bool = True  # the tanh time features ("No Time")

    def __post_init__(self):
        check_hidden(self.hidden_size, self.hidden_layers)
        check_decays("decays", self.decays)

    @property
    def feature_groups(self) -> tuple[int, ...]:
        return feature_groups(self.momentum, self.rms)

    @property
    def num_time_features(self) -> int:
        return len(TIMESCALES) if self.time else 0

    @property
    def num_features(self) -> int:
        return 2 + len(self.feature_groups) * len(self.decays) + self.num_time_features

    def init_theta(self, key: PRNGKey) -> Theta:
        return {"nn": init_mlp(key, [self.num_features] + [self.hidden_size] * self.hidden_layers + [2])}

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> FCState:
        zeros = acc.zeros_like_with_decays(params, len(self.decays))
        return FCState(mom=zeros, rms=zeros, iteration=jnp.zeros((), jnp.int32))

    def accumulate(self, state: FCState, grads: Params) -> tuple[Params, Params]:
        """The momentum and second-moment accumulators with `grads` included."""
        decays = jnp.asarray(self.decays, jnp.float32)
        return acc.momentum(decays, state.mom, grads), acc.second_moment(decays, state.rms, grads)

    def time_bias(self, nn: Params, iteration: jax.Array) -> jax.Array:
        """The first layer's input from the time features, plus its bias: [hidden_size]."""
        if not self.time:
            return nn["b0"]
        n_norm = self.num_features - len(TIMESCALES)
        return tanh_time_features(iteration, TIMESCALES) @ nn["w0"][n_norm:self.num_features] + nn["b0"]

    def tensor_step(self, nn: Params, bias: jax.Array, p, g, m, rms) -> jax.Array:
        """New values of one tensor; `bias` is the first layer's input from everything constant over
        the tensor (time features, bias, and in rnn_mlp_lopt the per-tensor LSTM)."""
        feats = tensor_features(p, g, m, rms, self.feature_groups)
        # The per-tensor normalization is folded into the first layer's weights (same numbers, no
        # normalized copy). Measured on conv_cifar's shapes, this [n, 22] @ [22, 32] matmul is ~2.5x
        # faster than small_fc_lopt's unrolled scalar-weighted sums at 32 hidden units.
        scale = second_moment_scale(feats, tuple(range(p.ndim)))
        h = feats @ (nn["w0"][: feats.shape[-1]] * scale[:, None]) + bias
        for layer in range(1, self.hidden_layers + 1):
            h = jax.nn.relu(h) @ nn[f"w{layer}"] + nn[f"b{layer}"]
        return p - direction_magnitude_step(h[..., 0], h[..., 1], self.step_mult, self.exp_mult)

    def update(self, theta: Theta, state: FCState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, FCState]:
        mom, rms = self.accumulate(state, grads)
        nn = theta["nn"]
        bias = self.time_bias(nn, state.iteration)
        new_params = jax.tree_util.tree_map(lambda *leaves: self.tensor_step(nn, bias, *leaves),
                                            params, grads, mom, rms)
        return new_params, FCState(mom, rms, state.iteration + 1)
