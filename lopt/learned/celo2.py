"""celo2: the normalized learned update rule of Moudgil, Knyazev and Belilovsky 2026, Celo2: Towards
learned optimization free lunch (ICLR 2026, arXiv:2602.19142), as its public implementation
(github.com/amoudgl/celo, `Celo2` and `Celo2Base`) computes it.

Matrices (every tensor of rank >= 2) take the step of a small per-parameter MLP (30 features -> 8
-> 8 -> 1, ReLU), post-processed per matrix:

1. gradients clipped to [-1000, 1000] update fixed-decay accumulators: momenta at 0.9/0.99/0.999, a
   second moment at 0.95 and AdaFactor row/column moments at 0.9/0.99/0.999 (learned_optimization's
   accumulators, as small_fc_lopt's; the decays are not learned);
2. the features: g, clip(g, +-0.1), p, the momenta, the second moment, m / sqrt(rms + 1e-8),
   1 / sqrt(rms + 1e-8), the AdaFactor-preconditioned gradients, g / sqrt(rms + 1e-8) and the
   AdaFactor features of a factored tensor (small_fc_lopt's); no time or loss features;
3. each feature scaled to unit second moment over the matrix (normalize_input, eps 1e-9);
4. the MLP's output d, orthogonalized by 5 quintic Newton-Schulz iterations (orthogonalize: Muon's
   coefficients 3.4445, -4.7750, 2.0315, after dividing d by its Frobenius norm + 1e-8);
5. scaled to unit RMS over the matrix (normalize_output, eps 1e-9);
6. p <- p - step_mult * (d + weight_decay * p).

Tensors of rank 3 and more (convolution kernels) are a stack of matrices over their last two axes:
their accumulators are the whole tensor's, normalization and orthogonalization are per matrix.

Vectors and scalars (rank <= 1: biases, and everything else that is no matrix) take the reference's
Adam without bias correction, eps inside the square root and no gradient clipping:
m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, p <- p - step_mult * mult_1d * (m / sqrt(v + eps)
+ weight_decay * p), with b1 0.9, b2 0.95, eps 1e-8, mult_1d 20. That is not optax.adam (which
corrects the bias and adds eps outside the square root: its first step is lr * sign(g), this one
about 0.45 lr * sign(g)), so the same learned_optimization accumulators compute it. The reference
picks these tensors by the name regex r"/b$" (haiku's biases; on its MLP meta-training tasks exactly
the vectors); flax names biases "bias" and a name says nothing about shape, so lopt picks them by
rank. `adam_1d: false` sends them through the MLP too (normalized over the vector, a scalar as a
1-vector, never orthogonalized): with `orthogonalize: false` that is the reference's Celo2Base.

Deviations from the reference: its MLP has 3 outputs of which it reads the second only times
exp_mult = 0 and the third never, so lopt's has the one output it uses (329 meta-parameters instead
of 347); ReLU only (the reference offers tanh, unused by either variant); the reference's options
that both variants leave at their defaults (bias correction, feature switches, param_scale_mult,
precondition_output, aggregate_mag, rmsmult) are not offered.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import accumulators as acc
from lopt.learned.celo import GRAD_CLIP, shared_features
from lopt.learned.features import (
    check_decays,
    factored_features,
    per_decay,
    second_moment_scale,
)
from lopt.learned.mlp import check_hidden, init_mlp, normalized_mlp

RMS_EPS = 1e-8  # in 1 / sqrt(rms + eps) of the features
NORM_EPS = 1e-9  # in the unit-second-moment scaling of the features and of the output


class AdamTensor(NamedTuple):
    """The state of a tensor that Adam updates: [*shape, 1] each."""

    m: jax.Array
    v: jax.Array


class MLPTensor(NamedTuple):
    """The state of a tensor that the MLP updates."""

    mom: jax.Array  # [*shape, momentum decays]
    rms: jax.Array  # [*shape, rms decays]
    fac: acc.Factored  # AdaFactor accumulators at the adafactor decays


class Celo2State(NamedTuple):
    tensors: Params  # an AdamTensor or MLPTensor per parameter tensor


def _is_tensor_state(x) -> bool:
    return isinstance(x, (AdamTensor, MLPTensor))


def newton_schulz(x: jax.Array, coeffs: tuple[float, ...], iters: int, eps: float) -> jax.Array:
    """`x` [rows, cols] orthogonalized by `iters` quintic Newton-Schulz iterations
    X <- a X + (b A + c A^2) X, A = X X^T, after X = x / (||x||_F + eps); computed on the wide
    orientation (Jordan et al. 2024, Muon; the singular values land near 1, not exactly on it)."""
    a, b, c = coeffs
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (jnp.linalg.norm(x) + eps)
    for _ in range(iters):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def tensor_features(p, g, m, rms, fac_g, fac: acc.Factored) -> list[jax.Array]:
    """The MLP inputs of one tensor (rank >= 1): F arrays shaped like `p`, in the reference's order
    (Celo's shared features; the AdaFactor ones for a factored tensor only)."""
    feats = shared_features(p, g, m, rms, fac_g, rms_eps=RMS_EPS)
    if acc.factored_dims(p.shape) is not None:
        feats += factored_features(m, fac, p.shape)
    return per_decay(feats)


@dataclass(frozen=True)
class Celo2:
    """Per-parameter MLP whose steps are orthogonalized and normalized per matrix; Adam on vectors."""

    hidden_size: int = 8
    hidden_layers: int = 2
    step_mult: float = 1e-3
    momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    rms_decays: tuple[float, ...] = (0.95,)
    adafactor_decays: tuple[float, ...] = (0.9, 0.99, 0.999)
    normalize_input: bool = True
    normalize_output: bool = True
    orthogonalize: bool = True
    ns_coeffs: tuple[float, ...] = (3.4445, -4.7750, 2.0315)
    ns_iters: int = 5
    ns_eps: float = 1e-8
    adam_1d: bool = True
    adam_b1: float = 0.9
    adam_b2: float = 0.95
    adam_eps: float = 1e-8
    mult_1d: float = 20.0
    weight_decay: float = 0.0

    def __post_init__(self):
        check_hidden(self.hidden_size, self.hidden_layers)
        for name in ("momentum_decays", "rms_decays", "adafactor_decays"):
            check_decays(name, getattr(self, name))
        check(len(self.rms_decays) in (1, len(self.momentum_decays)), "rms_decays", self.rms_decays,
              f"1 decay or as many as momentum_decays ({len(self.momentum_decays)}): the "
              f"m / sqrt(rms) feature pairs each momentum with one rms accumulator")
        check(len(self.adafactor_decays) == len(self.momentum_decays), "adafactor_decays",
              self.adafactor_decays, "as long as momentum_decays (their product is a feature)")
        check(self.step_mult > 0, "step_mult", self.step_mult, "a positive float")
        check(len(self.ns_coeffs) == 3, "ns_coeffs", self.ns_coeffs,
              "3 coefficients (a, b, c) of the quintic iteration a X + b (X X^T) X + c (X X^T)^2 X")
        check(self.ns_iters >= 0, "ns_iters", self.ns_iters, "a non-negative integer")
        check(self.ns_eps > 0, "ns_eps", self.ns_eps, "a positive float")
        for name in ("adam_b1", "adam_b2"):
            check(0 <= getattr(self, name) < 1, name, getattr(self, name), "a decay in [0, 1)")
        check(self.adam_eps > 0, "adam_eps", self.adam_eps, "a positive float")
        check(self.mult_1d > 0, "mult_1d", self.mult_1d, "a positive float")
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a non-negative float")

    @property
    def num_features(self) -> int:
        """g, clip(g), p, momenta, rms, m / sqrt(rms) (one per momentum), 1 / sqrt(rms), the
        AdaFactor-preconditioned gradients, g / sqrt(rms) and 5 AdaFactor features per decay (of
        factored tensors; the others read only the first num_features - 5 * adafactor decays)."""
        m, r, a = len(self.momentum_decays), len(self.rms_decays), len(self.adafactor_decays)
        return 3 + 2 * m + 3 * r + 6 * a

    def init_theta(self, key: PRNGKey) -> Theta:
        return {"nn": init_mlp(key, [self.num_features] + [self.hidden_size] * self.hidden_layers + [1])}

    def uses_adam(self, p) -> bool:
        """Whether tensor `p` is a vector or scalar that Adam updates (else the MLP does)."""
        return self.adam_1d and jnp.ndim(p) <= 1

    def _init_tensor(self, p) -> AdamTensor | MLPTensor:
        if self.uses_adam(p):
            return AdamTensor(*acc.zeros_like_with_decays((p, p), 1))
        return MLPTensor(acc.zeros_like_with_decays(p, len(self.momentum_decays)),
                         acc.zeros_like_with_decays(p, len(self.rms_decays)),
                         acc.factored_init(jnp.asarray(p), len(self.adafactor_decays)))

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> Celo2State:
        return Celo2State(jax.tree_util.tree_map(self._init_tensor, params))

    def _adam_update(self, state: AdamTensor, p, g) -> tuple[jax.Array, AdamTensor]:
        m = acc.momentum(jnp.asarray([self.adam_b1], jnp.float32), state.m, g)
        v = acc.second_moment(jnp.asarray([self.adam_b2], jnp.float32), state.v, g)
        step = m[..., 0] * jax.lax.rsqrt(v[..., 0] + self.adam_eps)
        return p - self.step_mult * self.mult_1d * (step + self.weight_decay * p), AdamTensor(m, v)

    def direction(self, nn: Params, feats: list[jax.Array]) -> jax.Array:
        """The step direction of one matrix, vector or 1-element vector from its features (unit RMS
        with normalize_output); a tensor of higher rank is a stack of matrices over its last two axes."""
        if feats[0].ndim > 2:
            shape = feats[0].shape
            stacked = [f.reshape((-1,) + shape[-2:]) for f in feats]
            return jax.vmap(lambda *fs: self.direction(nn, list(fs)))(*stacked).reshape(shape)
        # an unfactored tensor has no AdaFactor features: only the first rows of w0 are read
        (d,) = normalized_mlp(nn, nn["b0"], feats, self.hidden_layers, NORM_EPS, self.normalize_input)
        if self.orthogonalize and d.ndim == 2:
            d = newton_schulz(d, self.ns_coeffs, self.ns_iters, self.ns_eps)
        if self.normalize_output:
            d = d * second_moment_scale(d, tuple(range(d.ndim)), eps=NORM_EPS)
        return d

    def _mlp_update(self, nn: Params, state: MLPTensor, p, g) -> tuple[jax.Array, MLPTensor]:
        g = jnp.clip(g, -GRAD_CLIP, GRAD_CLIP)
        mom = acc.momentum(jnp.asarray(self.momentum_decays, jnp.float32), state.mom, g)
        rms = acc.second_moment(jnp.asarray(self.rms_decays, jnp.float32), state.rms, g)
        fac, fac_g = acc.factored_update(jnp.asarray(self.adafactor_decays, jnp.float32), state.fac, g)
        x = (p, g, mom, rms, fac_g, fac)
        if not jnp.shape(p):  # a scalar is a 1-element vector
            x = jax.tree_util.tree_map(lambda a: a[None], x)
        d = self.direction(nn, tensor_features(*x)).reshape(jnp.shape(p))
        return p - self.step_mult * (d + self.weight_decay * p), MLPTensor(mom, rms, fac)

    def update(self, theta: Theta, state: Celo2State, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, Celo2State]:
        treedef: Any  # a PyTreeDef (jaxlib's type is opaque to the type checker)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        new = [self._adam_update(s, p, g) if isinstance(s, AdamTensor) else self._mlp_update(theta["nn"], s, p, g)
               for s, p, g in zip(treedef.flatten_up_to(state.tensors), leaves, treedef.flatten_up_to(grads))]
        return (jax.tree_util.tree_unflatten(treedef, [p for p, _ in new]),
                Celo2State(jax.tree_util.tree_unflatten(treedef, [s for _, s in new])))
