"""celo: the compute-efficient learned optimizer of Moudgil, Knyazev, Lajoie, Belilovsky 2025, Celo:
Training Versatile Learned Optimizers on a Compute Diet (TMLR, arXiv:2501.12670), as its public
code (github.com/amoudgl/celo: its `Celo` with the settings of `celo_phase1` / `celo`) computes it.

Two modules, meta-trained one after the other:

- **The MLP update rule** (theta["mlp"]). Gradients are clipped to [-1000, 1000] and update
  accumulators at fixed decays (not learned): momenta at 0.9/0.99/0.999, a second moment at 0.999
  and AdaFactor row/column moments at 0.9/0.99/0.999 (learned_optimization's accumulators, as
  small_fc_lopt's). Each parameter has 30 features: g, clip(g, +-0.1), p, the momenta m, the second
  moment v, m / sqrt(v + 1e-6), 1 / sqrt(v + 1e-6), the AdaFactor-preconditioned gradients,
  g / sqrt(v + 1e-6), and the AdaFactor features (row and column moments, their rsqrt, the momenta
  preconditioned by them; a tensor of rank < 2 uses its full AdaFactor moment v_a for both, and
  m / sqrt(v_a)); each is scaled to unit second moment over its tensor. A ReLU MLP 30 -> 4 -> 4 -> 2
  reads them; with its outputs direction d and magnitude m the step of a tensor p is

      d * exp(exp_mult * m) * step_mult * sqrt(mean(p^2) + 1e-9) [* lr_mult in phase 2].

- **The learned scheduler** (theta["scheduler"]): a per-tensor LSTM(64) whose inputs, the same for
  every tensor, are the 9 fraction-of-training features (`training_fraction`: step / the training's
  length) and the 9 loss features of `loss_buffer`, first mixed across tensors by VeLO's layer
  (`tensor_lstm.mix_tensors`). Its output h gives each tensor lr_mult = 0.1 * exp(w . h + b). Its
  initial carry is learned (theta["scheduler"]["initial_carry"], zeros at init).

`phase` 1 steps without the scheduler (it is neither run nor used, its state stays at its init) and
meta-trains only theta["mlp"]; `phase` 2 multiplies the steps by lr_mult and meta-trains only
theta["scheduler"], warm-started from a phase-1 run (`theta=<run>`). Both phases have the same theta
(`trainable_keys` names the part meta-training moves; `train_partial: false` moves all of it, the
reference without --train_partial). The meta-trainer freezes the rest (lopt.unroll.partial).

Differences from the reference code (none changes an update of a training of known length, up to
float rounding):
- its MLP has 3 outputs and reads 2: this one has the 2 (154 meta-parameters instead of 159);
- with param_inits=1 its "controls" read-out goes through a softmax over one value, identically 1:
  there is no such head here;
- its mixing layer computes relu(Linear(x)) twice and keeps the second (the first's weights are
  dead): only the effective one is built;
- its LSTM is haiku's (one Linear over [x, h], gates i g f o, +1 inside the forget sigmoid); this
  is flax's cell with haiku's initialization and the +1 folded into the forget bias
  (`tensor_lstm.init_haiku_style`): the same function family, a re-parameterization;
- phase 1 does not run the LSTM, whose output it never reads;
- the fraction of training is clipped to 1.5 and reads 0 for an unknown length (lopt's convention,
  `training_fraction`), and the loss buffer's half-lives assume 1000 steps for an unknown length;
- the initial weights are drawn from lopt's key stream, not haiku's (the same distributions).
With the default sizes theta has 154 (MLP) + 35,649 (scheduler) = 35,803 meta-parameters (the
reference's, with its dead weights: 37,089).

Three switches for measuring ingredients of meta-generalization, at the reference's settings by
default (`fraction_features: false`, `step_scale: rms`, `width_scaling: false`):
- `fraction_features`: the MLP also reads the 9 fraction-of-training features (`training_fraction`;
  VeLO, Metz et al. 2022, arXiv:2211.09760, App. B.3), the same for every parameter, so phase 1
  alone can learn warm-up and decay tied to the horizon without the scheduler. They are constant
  over a tensor, so they enter unnormalized through the first layer's bias (9 more rows of w0).
- `step_scale`: what the step is relative to. `rms` (the reference): the tensor's current
  sqrt(mean(p^2) + 1e-9). `initial_rms`: the same at the training's first step, kept in the state:
  still free of width and init scale, without the feedback of `rms`, where a step that grows the
  weights grows every later step (measured: weights that grow geometrically over 1000-step runs
  until the loss diverges). `none`: d * exp(exp_mult * m) * step_mult in the parameters' own units,
  as small_fc_lopt's (the ablation of the relative step).
- `width_scaling` (with `base_width`): muLO's width scaling of the learned update (Therien et al.
  2024, "μLO: Compute-Efficient Meta-Generalization of Learned Optimizers", arXiv:2406.00153; the
  Adam rule of muP, Yang et al. 2021, arXiv:2203.03466): the step of a tensor of rank >= 2 whose
  fan-in (the product of all dimensions but the last: a dense or convolution kernel's inputs) is
  wider than `base_width` is multiplied by (base_width / fan_in), or by its square root when steps
  are relative to the tensor's RMS (`step_scale` rms or initial_rms), since at a 1/fan_in-variance
  init that RMS already carries fan_in^-1/2: either way a wide tensor's per-entry step shrinks as
  1/fan_in. Deviations from muLO, whose tasks say which tensor is which: lopt's optimizers see only
  the parameter tree, so the rule reads shapes: every tensor no wider than `base_width` keeps the
  recipe's step (muP's input weights, biases, and here also narrow hidden layers, which muP would
  step faster), and a wide input (an embedding, the 192 inputs of the patch autoencoder) is scaled
  like a hidden layer; the tasks keep their standard parametrization (muLO also puts them in muP:
  zero-initialized output layer, a 1/width output multiplier), as users' networks are.
"""
from dataclasses import dataclass
from math import prod
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import accumulators as acc
from lopt.learned import loss_buffer, tensor_lstm, training_fraction
from lopt.learned.features import direction_magnitude_step, factored_features, momentum_rms_features, per_decay
from lopt.learned.mlp import init_linear, init_mlp, normalized_mlp
from lopt.learned.small_fc_lopt import SmallFCLOpt, SmallFCState, accumulate, as_vectors

GRAD_CLIP = 1000.0  # gradients are clipped to +-GRAD_CLIP before anything reads them
FEATURE_CLIP = 0.1  # the clipped-gradient feature
LR_MULT_SCALE = 0.1  # lr_mult = LR_MULT_SCALE * exp(read-out of the LSTM)
PHASES = (1, 2)
STEP_SCALES = ("rms", "initial_rms", "none")  # what a step is relative to (`step_scale`)


class CeloState(NamedTuple):
    fc: SmallFCState  # the accumulators (at fixed decays) and the step count
    lstm: tensor_lstm.Carry  # the scheduler's carry, one row per tensor (phase 1: its initial value)
    loss: loss_buffer.LossBuffer  # the scheduler's loss statistics (phase 1: never updated)
    num_steps: jax.Array  # the training's length (0: unknown)
    initial_scale: jax.Array  # each tensor's param_scale at init [tensors] (read with step_scale=initial_rms)


def shared_features(p, g, m, rms, fac_g, rms_eps: float = 1e-6) -> list[jax.Array]:
    """The features Celo and Celo2 (github.com/amoudgl/celo) both start with, each [*shape, k]: g,
    clip(g, +-0.1), p, m, rms, m / sqrt(rms + eps), 1 / sqrt(rms + eps), the AdaFactor-preconditioned
    gradients and g / sqrt(rms + eps) (eps 1e-6 in Celo, 1e-8 in Celo2)."""
    m, rms, m_norm, rsqrt_rms = momentum_rms_features(m, rms, eps=rms_eps)
    return [g[..., None], jnp.clip(g, -FEATURE_CLIP, FEATURE_CLIP)[..., None], p[..., None], m, rms, m_norm,
            rsqrt_rms, fac_g, g[..., None] * rsqrt_rms]


def tensor_features(p, g, m, rms, fac_g, fac: acc.Factored) -> list[jax.Array]:
    """The 30 per-parameter features of one tensor (rank >= 1), in the reference's order, each
    shaped like `p`."""
    feats = shared_features(p, g, m, rms, fac_g)
    if acc.factored_dims(p.shape) is not None:
        feats += factored_features(m, fac, p.shape)
    else:  # the full AdaFactor moment stands for the row and the column moments (no eps in m / sqrt)
        v = fac.v_diag
        assert v is not None, "an unfactored tensor keeps its full second moment"
        feats += [v, v, jax.lax.rsqrt(v + 1e-8), jax.lax.rsqrt(v + 1e-8), m * v**-0.5]
    return per_decay(feats)


def param_scale(p: jax.Array) -> jax.Array:
    """sqrt(mean(p^2) + 1e-9): steps are relative to the tensor's scale."""
    return jnp.sqrt(jnp.mean(jnp.square(p)) + 1e-9)


@dataclass(frozen=True)
class Celo:
    """Per-parameter MLP update rule (phase 1) scaled per tensor by a learned LSTM scheduler (phase 2)."""

    phase: int = 1
    train_partial: bool = True
    lstm_size: int = 64
    hidden_size: int = 4
    hidden_layers: int = 2
    step_mult: float = 1e-3
    exp_mult: float = 1e-3
    momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    rms_decays: tuple[float, ...] = (0.999,)
    adafactor_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    fraction_features: bool = False
    step_scale: str = "rms"
    width_scaling: bool = False
    base_width: int = 64

    # Options a warm start may change: a phase-2 run starts from a phase-1 run's theta.
    WARM_START_MAY_CHANGE = ("phase", "train_partial")

    def __post_init__(self):
        check(self.phase in PHASES, "phase", self.phase,
              "1 (meta-train the MLP update rule) or 2 (meta-train the learned scheduler)")
        check(self.lstm_size > 0, "lstm_size", self.lstm_size, "a positive integer")
        check(self.step_scale in STEP_SCALES, "step_scale", self.step_scale, f"one of {list(STEP_SCALES)}")
        check(self.base_width > 0, "base_width", self.base_width, "a positive integer")
        _ = self._accumulators  # building it checks the MLP's sizes and the decays

    @property
    def _accumulators(self) -> SmallFCLOpt:
        """small_fc_lopt with these decays: its accumulator state (the decays are not learned here)."""
        return SmallFCLOpt(self.hidden_size, self.hidden_layers, self.step_mult, self.exp_mult,
                           self.momentum_decays, self.rms_decays, self.adafactor_decays)

    @property
    def num_features(self) -> int:
        """g, clip(g), p, momenta, v, m / sqrt(v) (one per momentum), 1 / sqrt(v), the
        AdaFactor-preconditioned gradients, g / sqrt(v) and 5 AdaFactor features per decay."""
        m, r, a = len(self.momentum_decays), len(self.rms_decays), len(self.adafactor_decays)
        return 3 + 2 * m + 3 * r + 6 * a

    @property
    def num_fraction_inputs(self) -> int:
        """The MLP's fraction-of-training inputs (0 unless fraction_features)."""
        return training_fraction.NUM_FEATURES if self.fraction_features else 0

    @property
    def num_scheduler_inputs(self) -> int:
        return training_fraction.NUM_FEATURES + loss_buffer.NUM_FEATURES

    @property
    def trainable_keys(self) -> tuple[str, ...] | None:
        """The top-level keys of theta that meta-training moves (None: all of theta)."""
        if not self.train_partial:
            return None
        return ("mlp",) if self.phase == 1 else ("scheduler",)

    def init_theta(self, key: PRNGKey) -> Theta:
        k_mlp, k_in, k_max, k_lstm, k_lr = jax.random.split(key, 5)
        n, h = self.num_scheduler_inputs, self.lstm_size
        return {
            "mlp": init_mlp(k_mlp, [self.num_features + self.num_fraction_inputs]
                            + [self.hidden_size] * self.hidden_layers + [2]),
            "scheduler": {
                "mix_in": init_linear(k_in, n, h),
                "mix_max": init_linear(k_max, n, h),
                "lstm": tensor_lstm.init_haiku_style(k_lstm, h, h),
                "initial_carry": {"c": jnp.zeros((h,)), "h": jnp.zeros((h,))},
                "lr": init_linear(k_lr, h, 1),
            },
        }

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> CeloState:
        rows = (len(jax.tree_util.tree_leaves(params)), self.lstm_size)
        carry = theta["scheduler"]["initial_carry"]
        lstm = (jnp.broadcast_to(carry["c"], rows), jnp.broadcast_to(carry["h"], rows))
        horizon = training_fraction.horizon(num_steps)
        scales = jnp.stack([param_scale(p) for p in jax.tree_util.tree_leaves(params)])
        return CeloState(self._accumulators.init(theta, params), lstm, loss_buffer.init(horizon), horizon, scales)

    def scheduler(self, theta: Theta, carry: tensor_lstm.Carry, iteration: jax.Array, num_steps: jax.Array,
                  buffer: loss_buffer.LossBuffer) -> tuple[tensor_lstm.Carry, jax.Array]:
        """One step of the learned scheduler: its new carry and each tensor's lr_mult [tensors]."""
        shared = jnp.concatenate([training_fraction.features(iteration, num_steps), loss_buffer.features(buffer)])
        x = jnp.broadcast_to(shared, (carry[0].shape[0], shared.size))
        x = tensor_lstm.mix_tensors(theta["mix_in"], theta["mix_max"], x)
        carry, out = tensor_lstm.step(theta["lstm"], carry, x)
        return carry, LR_MULT_SCALE * jnp.exp(out @ theta["lr"]["w"][:, 0] + theta["lr"]["b"][0])

    def width_multiplier(self, shape: tuple[int, ...]) -> float:
        """The factor `width_scaling` puts on the steps of a tensor of this shape (1 without it)."""
        if not self.width_scaling or len(shape) < 2:
            return 1.0
        ratio = min(1.0, self.base_width / prod(shape[:-1]))
        return ratio if self.step_scale == "none" else ratio**0.5

    def tensor_step(self, nn: Params, bias: jax.Array, lr_mult: jax.Array | float, initial_scale: jax.Array, p, g,
                    m, rms, fac_g, fac) -> jax.Array:
        """New values of one tensor from its accumulators (with this step's gradient included);
        `bias` is the MLP's first-layer input from what is constant over the tensor."""
        shape = p.shape
        p, g, m, rms, fac_g, fac = as_vectors(p, g, m, rms, fac_g, fac)
        direction, magnitude = normalized_mlp(nn, bias, tensor_features(p, g, m, rms, fac_g, fac), self.hidden_layers)
        step = direction_magnitude_step(direction, magnitude, self.step_mult, self.exp_mult)
        if self.step_scale != "none":
            step = step * (param_scale(p) if self.step_scale == "rms" else initial_scale)
        return (p - lr_mult * self.width_multiplier(shape) * step).reshape(shape)

    def update(self, theta: Theta, state: CeloState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, CeloState]:
        grads = jax.tree_util.tree_map(lambda g: jnp.clip(g, -GRAD_CLIP, GRAD_CLIP), grads)
        fc = state.fc
        mom, rms, fac, fac_g = accumulate(jnp.asarray(self.momentum_decays, jnp.float32),
                                          jnp.asarray(self.rms_decays, jnp.float32),
                                          jnp.asarray(self.adafactor_decays, jnp.float32), fc, grads)
        treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        if self.phase == 1:
            lstm, buffer, lr_mult = state.lstm, state.loss, [1.0] * len(leaves)
        else:
            buffer = loss_buffer.update(state.loss, loss)
            lstm, lr = self.scheduler(theta["scheduler"], state.lstm, fc.iteration, state.num_steps, buffer)
            lr_mult = list(lr)
        nn, bias = theta["mlp"], theta["mlp"]["b0"]
        if self.fraction_features:
            bias = bias + training_fraction.features(fc.iteration, state.num_steps) @ nn["w0"][self.num_features:]
        per_tensor = zip(lr_mult, state.initial_scale, leaves,
                         *(treedef.flatten_up_to(t) for t in (grads, mom, rms, fac_g, fac)))
        new_leaves = [self.tensor_step(nn, bias, *t) for t in per_tensor]
        return treedef.unflatten(new_leaves), CeloState(SmallFCState(mom, rms, fac, fc.iteration + 1), lstm,
                                                         buffer, state.num_steps, state.initial_scale)
