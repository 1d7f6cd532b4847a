"""learnable_adam: Adam whose four hyperparameters are the meta-parameters.

The simplest learned optimizer and the baseline every richer one must beat: theta is
{lr, b1, b2, eps} in the learned space of `adam_hparams` (0.1 log lr, 0.1 log(1 - beta),
0.1 log eps), initialized at the configured values, and every step is optax's Adam at those values.
4 meta-parameters; `trainable` names those meta-training moves (e.g. only the learning rate, as in
the truncation-bias experiment of Metz et al. 2019, arXiv:1810.10180, Fig. 4), the others stay at
their configured values.
"""
from dataclasses import dataclass

import jax
import optax

from lopt.base import Params, PRNGKey, Theta
from lopt.config import check
from lopt.learned import adam_hparams


@dataclass(frozen=True)
class LearnableAdam:
    """Adam with meta-learned learning rate, beta1, beta2 and epsilon (shared by all tensors)."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    trainable: tuple[str, ...] | None = None  # the meta-parameters meta-training moves (None: all four)

    def __post_init__(self):
        adam_hparams.check_values(self.lr, self.b1, self.b2, self.eps)
        names = adam_hparams.NAMES
        check(self.trainable is None or (len(self.trainable) > 0 and set(self.trainable) <= set(names)),
              "trainable", None if self.trainable is None else list(self.trainable),
              f"null (all) or a non-empty list of {', '.join(names)}")

    @property
    def trainable_keys(self) -> tuple[str, ...] | None:
        """The meta-parameters meta-training moves (None: all of theta)."""
        return None if self.trainable is None else tuple(self.trainable)

    def init_theta(self, key: PRNGKey) -> Theta:
        return adam_hparams.to_learned(self.lr, self.b1, self.b2, self.eps)

    def init(self, theta: Theta, params: Params, num_steps: jax.Array | int | None = None) -> optax.OptState:
        return adam_hparams.adam(theta).init(params)

    def update(self, theta: Theta, state: optax.OptState, params: Params, grads: Params,
               loss: jax.Array) -> tuple[Params, optax.OptState]:
        updates, state = adam_hparams.adam(theta).update(grads, state, params)
        return optax.apply_updates(params, updates), state
