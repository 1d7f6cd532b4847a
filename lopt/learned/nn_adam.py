"""nn_adam: the per-tensor LSTM hyperparameter controller of Metz et al. 2022, Practical tradeoffs
between memory, compute, and performance in learned optimizers (arXiv:2203.11860), section 2.2 and
Appendix C.

Every tensor is trained by optax's Adam with its own learning rate, beta1, beta2 and epsilon. They
start at learned base values (theta["hparams"], shared by all tensors, in the learned space of
`adam_hparams`). After each step an LSTM (32 units, weights in theta, one cell per tensor) reads 19
statistics of the tensor (App. C.1, as in the reference implementation the paper links: log-squashed
mean and variance of momentum, second moment, parameter and gradient, the mean |gradient|, the
signs of the means, whether the tensor is a scalar or a bias, and the current hyperparameters) and
moves the tensor's hyperparameters by output_scale times a linear read-out of its output: the
controller outputs offsets from the previous values, which start at the base values.

Unlike the reference we apply plain optax Adam (with bias correction) instead of its modified
lr * (1 + eps) step, so a zero read-out is exactly Adam at the base hyperparameters, and the LSTM's
initial state is zeros rather than learned. With the default sizes it has 6,792 meta-parameters.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import adam_hparams, tensor_lstm
from lopt.learned.features import NUM_TENSOR_STATISTICS, tensor_statistics

NUM_FEATURES = NUM_TENSOR_STATISTICS + len(adam_hparams.NAMES)  # 19


class NNAdamState(NamedTuple):
    adam: tuple[optax.OptState, ...]  # optax Adam state of each tensor, in leaf order
    hparams: dict[str, jax.Array]  # learned-space lr, b1, b2, eps of each tensor: [num tensors] each
    lstm: tensor_lstm.Carry  # LSTM carry (c, h): [num tensors, lstm_size] each


def tensor_features(p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array,
                    hparams: dict[str, jax.Array]) -> jax.Array:
    """The 19 controller inputs of one tensor with momentum `m`, second moment `v` and learned-space
    hyperparameters `hparams` (Practical tradeoffs, App. C.1)."""
    feats = tensor_statistics(p, g, m, v) + [0.2 * jnp.clip(hparams[k], -5.0, 5.0) for k in adam_hparams.NAMES]
    return jnp.stack(feats)


@dataclass(frozen=True)
class NNAdam:
    """Adam with per-tensor hyperparameters driven by an LSTM over per-tensor statistics."""

    lstm_size: int = 32
    output_scale: float = 0.01
    lr: float = 1e-4
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        check(self.lstm_size > 0, "lstm_size", self.lstm_size, "a positive integer")
        check(self.output_scale > 0, "output_scale", self.output_scale, "a positive float")
        adam_hparams.check_values(self.lr, self.b1, self.b2, self.eps)

    def init_theta(self, key: PRNGKey) -> Theta:
        return {
            "lstm": tensor_lstm.init(key, self.lstm_size, NUM_FEATURES),
            # zero read-out (as in the reference): training starts as Adam at the base values
            "out": {"w": jnp.zeros((self.lstm_size, len(adam_hparams.NAMES))),
                    "b": jnp.zeros((len(adam_hparams.NAMES),))},
            "hparams": adam_hparams.to_learned(self.lr, self.b1, self.b2, self.eps),
        }

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> NNAdamState:
        leaves = jax.tree_util.tree_leaves(params)
        hparams = {k: jnp.full((len(leaves),), v) for k, v in theta["hparams"].items()}
        adam = tuple(adam_hparams.adam(theta["hparams"]).init(p) for p in leaves)
        return NNAdamState(adam, hparams, tensor_lstm.zero_carry(len(leaves), self.lstm_size))

    def update(self, theta: Theta, state: NNAdamState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, NNAdamState]:
        treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        new_leaves, adam, feats = [], [], []
        for i, (p, g, s) in enumerate(zip(leaves, treedef.flatten_up_to(grads), state.adam)):
            hp = {k: v[i] for k, v in state.hparams.items()}
            updates, s = adam_hparams.adam(hp).update(g, s, p)
            new_leaves.append(optax.apply_updates(p, updates))
            adam.append(s)
            moments = s[0]  # optax.adam = chain(scale_by_adam, scale_by_learning_rate)
            feats.append(tensor_features(p, g, moments.mu, moments.nu, hp))
        lstm, out = tensor_lstm.step(theta["lstm"], state.lstm, jnp.stack(feats))
        deltas = self.output_scale * (out @ theta["out"]["w"] + theta["out"]["b"])
        hparams = {k: state.hparams[k] + deltas[:, j] for j, k in enumerate(adam_hparams.NAMES)}
        return treedef.unflatten(new_leaves), NNAdamState(tuple(adam), hparams, lstm)
