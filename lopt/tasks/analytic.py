"""Dataset-free tasks with a closed-form loss: a random quadratic and the two-minima toy of Metz et al.
2018, Learned optimizers that outperform SGD on wall-clock and test loss (arXiv:1810.10180).

They have no data (`dataset` is None, so the data loaders give None) and their batch is a fresh
key (`lopt.data.noise_key`) from which the loss draws gradient noise. Their meta-loss is clipped at
`loss_clip_factor` times the expected loss at initialization, as classification clips at a
multiple of the loss of the uniform prediction.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.data import noise_key
from lopt.tasks.base import Params, Task


def analytic_task(name: str, init: Callable[[jax.Array], Params], loss: Callable[[Params, jax.Array], jax.Array],
                  loss_clip: float) -> Task:
    """A Task whose batch is one noise key (batch size 1) and whose only metric is the loss."""
    return Task(name, init, loss, 1, loss_clip, sampler=noise_key)


@dataclass(frozen=True)
class QuadraticConfig:
    """`kind: quadratic`: loss(p) = 0.5 * sum_i c_i (p_i - p*_i)^2 + noise_std * <eps, p - p*>.

    The problem (curvatures c log-uniform in [min_curvature, max_curvature], optimum p* ~ N(0, 1))
    is fixed by `problem_seed`, as a dataset fixes an image task; each inner problem starts at its
    own p0 ~ N(0, init_scale^2). eps ~ N(0, I) is drawn from each step's batch key: gradients get
    N(0, noise_std^2) noise, the loss is unbiased and exactly 0 at p* for every batch.
    """

    name: str
    dim: int = 16
    min_curvature: float = 0.01
    max_curvature: float = 10.0
    init_scale: float = 1.0
    noise_std: float = 0.1
    problem_seed: int = 0
    loss_clip_factor: float = 1.5

    dataset = None  # no data to load

    def __post_init__(self):
        check(self.dim > 0, "dim", self.dim, "a positive integer")
        check(0 < self.min_curvature <= self.max_curvature, "min_curvature", self.min_curvature,
              f"positive and at most max_curvature={self.max_curvature}")
        check(self.init_scale >= 0, "init_scale", self.init_scale, "non-negative")
        check(self.noise_std >= 0, "noise_std", self.noise_std, "non-negative")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    def problem(self) -> tuple[jax.Array, jax.Array]:
        """The curvatures c and the optimum p* of this quadratic."""
        k_c, k_opt = jax.random.split(jax.random.PRNGKey(self.problem_seed))
        log_c = jax.random.uniform(k_c, (self.dim,), minval=math.log(self.min_curvature),
                                   maxval=math.log(self.max_curvature))
        return jnp.exp(log_c), jax.random.normal(k_opt, (self.dim,))

    def build(self) -> Task:
        curvature, optimum = self.problem()

        def init(key: jax.Array) -> jax.Array:
            return self.init_scale * jax.random.normal(key, (self.dim,))

        def loss(p: jax.Array, key: jax.Array) -> jax.Array:
            d = p - optimum
            eps = jax.random.normal(key, d.shape)
            return 0.5 * jnp.sum(curvature * d**2) + self.noise_std * jnp.sum(eps * d)

        expected_init_loss = 0.5 * float(jnp.sum(curvature * (self.init_scale**2 + optimum**2)))
        return analytic_task(self.name, init, loss, self.loss_clip_factor * expected_init_loss)


@dataclass(frozen=True)
class TwoMinimaConfig:
    """`kind: two_minima`: Metz et al. 2018, Sec. 2.3 / Fig. 3a, loss(w) = (w - 4)(w - 3) w^2 from w0 = -1.2.

    Deterministic (the batch key is unused). Local minimum 0 at w = 0, global minimum at
    w = (21 + sqrt(57)) / 8 ~ 3.569 (loss ~ -3.12). Fig. 3's caption puts the global minimum at
    w ~ .5, which this formula (the paper's text) does not give; we follow the text.
    """

    name: str
    init: float = -1.2
    loss_clip_factor: float = 1.5

    dataset = None  # no data to load

    def __post_init__(self):
        check(bool(self.loss(self.init) > 0), "init", self.init, "a point of positive loss (not 0, not in [3, 4])")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    @staticmethod
    def loss(w: Any, key: jax.Array | None = None) -> Any:
        """(w - 4)(w - 3) w^2 of an array or a Python float."""
        return (w - 4.0) * (w - 3.0) * w**2

    def build(self) -> Task:
        w0 = jnp.asarray(self.init, jnp.float32)
        clip = self.loss_clip_factor * self.loss(self.init)
        return analytic_task(self.name, lambda key: w0, self.loss, clip)
