"""hypernet: VeLO's hierarchical hypernetwork (Metz et al. 2022, VeLO: Training versatile learned
optimizers by scaling up, arXiv:2211.09760, App. B; learned_optimization's HyperV2), small.

A per-tensor LSTM GENERATES the weights of each tensor's per-parameter MLP. The per-parameter MLP
is small_fc_lopt's (momenta, second moment and AdaFactor accumulators at learnable decays; 28
features normalized over the tensor -> 4 -> 4 -> direction, magnitude; step
step_mult * d * exp(exp_mult * m)) without its time inputs. Theta holds a bank of `bank_size` such
MLPs; every step the LSTM emits, per tensor, `bank_size` mixing coefficients, and the tensor's MLP
is the bank mixed by them (VeLO's "param_inits" interpolation). The coefficients are
1 / bank_size + a linear read-out of the LSTM output that starts at zero, so training starts with
every tensor using the bank's mean.

The LSTM reads the inputs of `tensor_lstm.inputs` (15 statistics of the tensor, 11 tanh time
features of the step count, 2 training-loss z-scores) and VeLO's fraction-of-training features (9
soft switches of step / num_steps, `training_fraction`; the length comes from `init`, and an unknown
one reads as 0), first passed through VeLO's cross-tensor mixing layer:
W x + b + max over tensors of relu(W' x + b'). VeLO's parameter-scale step multiplier and learned
per-tensor step size are left out. With the default sizes (LSTM 32, bank 8) it has 12,191
meta-parameters.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import loss_features, tensor_lstm, training_fraction
from lopt.learned.features import TIMESCALES
from lopt.learned.mlp import init_linear, init_mlp
from lopt.learned.small_fc_lopt import SmallFCLOpt, SmallFCState


class HypernetState(NamedTuple):
    fc: SmallFCState  # small_fc_lopt's accumulators and step count
    lstm: tensor_lstm.Carry  # per-tensor LSTM carry: [num tensors, lstm_size] each
    loss: loss_features.LossStats
    num_steps: jax.Array  # the training's length (0: unknown), for the fraction-of-training features


@dataclass(frozen=True)
class Hypernet:
    """Per-tensor LSTM that generates each tensor's per-parameter MLP by mixing a bank of MLPs."""

    lstm_size: int = 32
    bank_size: int = 8
    hidden_size: int = 4
    hidden_layers: int = 2
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    rms_decays: tuple[float, ...] = (0.999,)
    adafactor_decays: tuple[float, ...] = (0.9, 0.99, 0.999)

    def __post_init__(self):
        check(self.lstm_size > 0, "lstm_size", self.lstm_size, "a positive integer")
        check(self.bank_size > 0, "bank_size", self.bank_size, "a positive integer")
        _ = self.mlp  # building small_fc_lopt checks the MLP's sizes and decays

    @property
    def mlp(self) -> SmallFCLOpt:
        """The per-parameter part: small_fc_lopt, whose MLP weights are generated here."""
        return SmallFCLOpt(self.hidden_size, self.hidden_layers, self.step_mult, self.exp_mult,
                           self.momentum_decays, self.rms_decays, self.adafactor_decays)

    @property
    def num_lstm_inputs(self) -> int:
        """Per-tensor inputs of the mixing layer before the LSTM."""
        return tensor_lstm.NUM_INPUTS + training_fraction.NUM_FEATURES

    @property
    def num_features(self) -> int:
        """Inputs of the generated per-parameter MLP: small_fc_lopt's without the time features."""
        return self.mlp.num_features - len(TIMESCALES)

    def init_theta(self, key: PRNGKey) -> Theta:
        k_bank, k_in, k_max, k_lstm = jax.random.split(key, 4)
        sizes = [self.num_features] + [self.hidden_size] * self.hidden_layers + [2]
        theta = {k: v for k, v in self.mlp.init_theta(key).items() if k != "nn"}  # the learnable decays
        theta.update({
            "bank": jax.vmap(lambda k: init_mlp(k, sizes))(jax.random.split(k_bank, self.bank_size)),
            "mix_in": init_linear(k_in, self.num_lstm_inputs, self.lstm_size),
            "mix_max": init_linear(k_max, self.num_lstm_inputs, self.lstm_size),
            "lstm": tensor_lstm.init(k_lstm, self.lstm_size, self.lstm_size),
            # zero read-out: every tensor starts with the bank's mean MLP
            "controls": {"w": jnp.zeros((self.lstm_size, self.bank_size)), "b": jnp.zeros((self.bank_size,))},
        })
        return theta

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> HypernetState:
        num_tensors = len(jax.tree_util.tree_leaves(params))
        return HypernetState(self.mlp.init(theta, params), tensor_lstm.zero_carry(num_tensors, self.lstm_size),
                             loss_features.init(), training_fraction.horizon(num_steps))

    def update(self, theta: Theta, state: HypernetState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, HypernetState]:
        mlp = self.mlp
        mom, rms, fac, fac_g = mlp.accumulate(theta, state.fc, grads)
        treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        g, m, v, fg = (treedef.flatten_up_to(t) for t in (grads, mom, rms, fac_g))
        f = treedef.flatten_up_to(fac)  # Factored leaves
        x = tensor_lstm.inputs(list(zip(leaves, g, m, v)), state.fc.iteration,
                               loss_features.features(state.loss, loss))
        frac = training_fraction.features(state.fc.iteration, state.num_steps)
        x = jnp.concatenate([x, jnp.broadcast_to(frac, (x.shape[0], frac.size))], axis=1)
        x = tensor_lstm.mix_tensors(theta["mix_in"], theta["mix_max"], x)
        lstm, out = tensor_lstm.step(theta["lstm"], state.lstm, x)
        controls = 1.0 / self.bank_size + out @ theta["controls"]["w"] + theta["controls"]["b"]  # [tensors, bank]
        new_leaves = []
        for i, tensor in enumerate(zip(leaves, g, m, v, fg, f)):
            nn = jax.tree_util.tree_map(lambda w, c=controls[i]: jnp.tensordot(c, w, 1), theta["bank"])
            new_leaves.append(mlp.tensor_step(nn, nn["b0"], *tensor))
        fc = SmallFCState(mom, rms, fac, state.fc.iteration + 1)
        return treedef.unflatten(new_leaves), HypernetState(fc, lstm, loss_features.update(state.loss, loss),
                                                            state.num_steps)
