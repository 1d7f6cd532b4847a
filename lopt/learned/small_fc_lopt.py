"""small_fc_lopt: the AdafacMLP learned optimizer of Metz et al. 2022, Practical tradeoffs between
memory, compute, and performance in learned optimizers (arXiv:2203.11860), Appendix A.

A tiny per-parameter MLP (39 features -> 4 -> 4 -> 2, ReLU) fed with momenta at 3 learnable decays,
a second moment, AdaFactor accumulators at 3 learnable decays and 11 tanh time features. All but
the time features are normalized to unit second moment over each tensor. The output is a direction
d and magnitude m, and the step is step_mult * d * exp(exp_mult * m). With the default sizes it
has 197 meta-parameters.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import accumulators as acc
from lopt.learned.features import (
    TIMESCALES,
    check_decays,
    decay_to_param,
    direction_magnitude_step,
    factored_features,
    momentum_rms_features,
    param_to_decay,
    per_decay,
    tanh_time_features,
)
from lopt.learned.mlp import check_hidden, init_mlp, normalized_mlp


class SmallFCState(NamedTuple):
    mom: Params  # leaves [*shape, momentum decays]
    rms: Params  # leaves [*shape, rms decays]
    fac: Params  # leaves accumulators.Factored
    iteration: jax.Array


def _tensor_features(p, g, m, rms, fac_g, fac: acc.Factored) -> list[jax.Array]:
    """The normalizable per-parameter features of one tensor: F arrays shaped like `p`."""
    feats = [g[..., None], p[..., None], *momentum_rms_features(m, rms), fac_g]
    dims = acc.factored_dims(p.shape)
    if dims is None:
        v = fac.v_diag
        assert v is not None, "an unfactored tensor keeps its full second moment"
        feats += [v, v, jax.lax.rsqrt(v + 1e-8), jax.lax.rsqrt(v + 1e-8), m * (v + 1e-6) ** -0.5]
    else:
        feats += factored_features(m, fac, p.shape)
    return per_decay(feats)


def as_vectors(p, g, m, rms, fac_g, fac: acc.Factored) -> tuple:
    """One tensor's values and accumulators, a scalar tensor's as those of a 1-element vector."""
    if p.shape:
        return p, g, m, rms, fac_g, fac
    return (*(x[None] for x in (p, g, m, rms, fac_g)), jax.tree_util.tree_map(lambda x: x[None], fac))


def accumulate(momentum_decays: jax.Array, rms_decays: jax.Array, adafactor_decays: jax.Array, state: SmallFCState,
               grads: Params) -> tuple[Params, Params, Params, Params]:
    """The momentum, second-moment and AdaFactor accumulators of `state` with `grads` included, at
    the given decays, and the AdaFactor-preconditioned gradient (leaves [*shape, decays])."""
    mom = acc.momentum(momentum_decays, state.mom, grads)
    rms = acc.second_moment(rms_decays, state.rms, grads)
    fac_and_g = jax.tree_util.tree_map(
        lambda f, g: acc.factored_update(adafactor_decays, f, g), state.fac, grads,
        is_leaf=lambda x: isinstance(x, acc.Factored))
    treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
    treedef = jax.tree_util.tree_structure(grads)
    fac, fac_g = (jax.tree_util.tree_unflatten(treedef, part) for part in zip(*treedef.flatten_up_to(fac_and_g)))
    return mom, rms, fac, fac_g


@dataclass(frozen=True)
class SmallFCLOpt:
    """Per-parameter MLP learned optimizer with AdaFactor features (AdafacMLP)."""

    hidden_size: int = 4
    hidden_layers: int = 2
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    rms_decays: tuple[float, ...] = (0.999,)
    adafactor_decays: tuple[float, ...] = (0.9, 0.99, 0.999)

    def __post_init__(self):
        check_hidden(self.hidden_size, self.hidden_layers)
        for name in ("momentum_decays", "rms_decays", "adafactor_decays"):
            check_decays(name, getattr(self, name))
        check(len(self.adafactor_decays) == len(self.momentum_decays), "adafactor_decays",
              self.adafactor_decays, "as long as momentum_decays (their product is a feature)")
        # The m / sqrt(rms) feature broadcasts the momentum decay axis against the rms one.
        check(len(self.rms_decays) in (1, len(self.momentum_decays)), "rms_decays", self.rms_decays,
              f"1 decay or as many as momentum_decays ({len(self.momentum_decays)}): the "
              f"m / sqrt(rms) feature pairs each momentum with one rms accumulator")

    @property
    def num_features(self) -> int:
        """g, p, momentum, rms, m / sqrt(rms) (one per momentum decay: rms has 1 or as many
        decays), 1 / sqrt(rms), the AdaFactor features and the time features."""
        m, r, a = len(self.momentum_decays), len(self.rms_decays), len(self.adafactor_decays)
        return 2 + 2 * m + 2 * r + 6 * a + len(TIMESCALES)

    def init_theta(self, key: PRNGKey) -> Theta:
        nn = init_mlp(key, [self.num_features] + [self.hidden_size] * self.hidden_layers + [2])
        return {
            "momentum_decays": jnp.zeros(len(self.momentum_decays)),
            "rms_decays": jnp.zeros(len(self.rms_decays)),
            "adafactor_decays": jnp.zeros(len(self.adafactor_decays)),
            "nn": nn,
        }

    def _decays(self, theta: Theta, name: str) -> jax.Array:
        initial = jnp.asarray(getattr(self, name), jnp.float32)
        return param_to_decay(decay_to_param(initial) + theta[name])

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> SmallFCState:
        return SmallFCState(
            mom=acc.zeros_like_with_decays(params, len(self.momentum_decays)),
            rms=acc.zeros_like_with_decays(params, len(self.rms_decays)),
            fac=jax.tree_util.tree_map(lambda p: acc.factored_init(p, len(self.adafactor_decays)), params),
            iteration=jnp.zeros((), jnp.int32),
        )

    def tensor_step(self, nn: Params, bias: jax.Array, p, g, m, rms, fac_g, fac) -> jax.Array:
        """New values of one tensor; `bias` is the first layer's input from everything constant over
        the tensor (time features and bias here; hypernet passes its generated bias). Only the first
        rows of nn["w0"], those of the normalized features, are read."""
        shape = p.shape
        p, g, m, rms, fac_g, fac = as_vectors(p, g, m, rms, fac_g, fac)
        direction, magnitude = normalized_mlp(nn, bias, _tensor_features(p, g, m, rms, fac_g, fac), self.hidden_layers)
        step = direction_magnitude_step(direction, magnitude, self.step_mult, self.exp_mult)
        return (p - step).reshape(shape)

    def accumulate(self, theta: Theta, state: SmallFCState, grads: Params) -> tuple[Params, Params, Params, Params]:
        """Momentum, second moment and AdaFactor accumulators with `grads` included, at the decays
        that theta sets, and the AdaFactor-preconditioned gradient (leaves [*shape, decays])."""
        return accumulate(self._decays(theta, "momentum_decays"), self._decays(theta, "rms_decays"),
                          self._decays(theta, "adafactor_decays"), state, grads)

    def update(self, theta: Theta, state: SmallFCState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, SmallFCState]:
        mom, rms, fac, fac_g = self.accumulate(theta, state, grads)
        nn = theta["nn"]
        n_norm = self.num_features - len(TIMESCALES)
        time_bias = tanh_time_features(state.iteration) @ nn["w0"][n_norm:] + nn["b0"]
        new_params = jax.tree_util.tree_map(
            lambda *leaves: self.tensor_step(nn, time_bias, *leaves), params, grads, mom, rms, fac_g, fac,
            is_leaf=lambda x: isinstance(x, acc.Factored))
        return new_params, SmallFCState(mom, rms, fac, state.iteration + 1)
