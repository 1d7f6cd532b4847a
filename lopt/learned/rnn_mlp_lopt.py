"""rnn_mlp_lopt: the hierarchical learned optimizer "rnn_fc_lopt" of Metz et al. 2022, Practical
tradeoffs between memory, compute, and performance in learned optimizers (arXiv:2203.11860), from
Metz et al. 2020, Tasks, stability, architecture, and compute: Training more effective learned
optimizers, and using them to train themselves (arXiv:2009.11243); learned_optimization's
RNNMLPLOpt.

Two levels. A per-tensor LSTM (weights shared by all tensors, one carry per tensor in the optimizer
state) reads, every step, 28 inputs per tensor: 15 statistics of the tensor's parameters, gradient
and accumulators (`features.tensor_statistics`), 11 tanh time features of the step count and 2
training-loss z-scores (`loss_features`). Its output is broadcast to every element of the tensor as
extra inputs of fc_lopt's per-parameter MLP (31 features -> hidden -> direction, magnitude; same
accumulators, normalization and step). Since those inputs are constant over a tensor their
contribution to the first layer is a per-tensor bias, computed once per tensor: the per-parameter
cost is fc_lopt's.

Fraction of training is not an input: `Optimizer.init` is not told how long a problem will train
(schedules sample lengths per problem inside the unroll), so time enters through the step count.
The reference's extra channels (MLP outputs averaged back into the LSTM, a cross-tensor mean fed to
the next step, a dynamic gradient clipper, validation-loss features) are left out. With the default
sizes (LSTM 32, MLP 32 hidden) it has 9,922 meta-parameters.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import loss_features, tensor_lstm
from lopt.learned.fc_lopt import FCLOpt, FCState
from lopt.learned.mlp import init_mlp


class RNNMLPState(NamedTuple):
    fc: FCState  # fc_lopt's accumulators and step count
    lstm: tensor_lstm.Carry  # per-tensor LSTM carry: [num tensors, lstm_size] each
    loss: loss_features.LossStats


@dataclass(frozen=True)
class RNNMLPLOpt:
    """Per-tensor LSTM whose output conditions fc_lopt's per-parameter MLP."""

    lstm_size: int = 32
    hidden_size: int = 32
    hidden_layers: int = 1
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    decays: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999, 0.9999)

    def __post_init__(self):
        check(self.lstm_size > 0, "lstm_size", self.lstm_size, "a positive integer")
        _ = self.mlp  # building the per-parameter MLP validates its settings

    @property
    def mlp(self) -> FCLOpt:
        """The per-parameter part: fc_lopt, whose MLP has lstm_size more inputs here."""
        return FCLOpt(self.hidden_size, self.hidden_layers, self.step_mult, self.exp_mult, self.decays)

    def init_theta(self, key: PRNGKey) -> Theta:
        k_lstm, k_mlp = jax.random.split(key)
        sizes = [self.mlp.num_features + self.lstm_size] + [self.hidden_size] * self.hidden_layers + [2]
        return {"lstm": tensor_lstm.init(k_lstm, self.lstm_size, tensor_lstm.NUM_INPUTS),
                "nn": init_mlp(k_mlp, sizes)}

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> RNNMLPState:
        num_tensors = len(jax.tree_util.tree_leaves(params))
        return RNNMLPState(self.mlp.init(theta, params), tensor_lstm.zero_carry(num_tensors, self.lstm_size),
                           loss_features.init())

    def update(self, theta: Theta, state: RNNMLPState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, RNNMLPState]:
        mlp, nn = self.mlp, theta["nn"]
        mom, rms = mlp.accumulate(state.fc, grads)
        treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        per_tensor = list(zip(leaves, *(treedef.flatten_up_to(t) for t in (grads, mom, rms))))
        inputs = tensor_lstm.inputs(per_tensor, state.fc.iteration, loss_features.features(state.loss, loss))
        lstm, out = tensor_lstm.step(theta["lstm"], state.lstm, inputs)
        bias = mlp.time_bias(nn, state.fc.iteration) + out @ nn["w0"][mlp.num_features:]  # [tensors, hidden]
        new_leaves = [mlp.tensor_step(nn, bias[i], *t) for i, t in enumerate(per_tensor)]
        fc = FCState(mom, rms, state.fc.iteration + 1)
        return treedef.unflatten(new_leaves), RNNMLPState(fc, lstm, loss_features.update(state.loss, loss))
