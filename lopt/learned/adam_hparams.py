"""Adam hyperparameters in the space where learned optimizers learn them.

lr and eps as 0.1 * log(value), beta1 and beta2 as 0.1 * log(1 - beta) (Metz et al. 2022, Practical
tradeoffs between memory, compute, and performance in learned optimizers, App. C, the nn_adam
parameterization): equal steps in this space are equal relative changes of the learning
rate, epsilon and the averaging horizons. Back in natural units, values are clipped to ranges
where Adam stays finite. The Adam math itself is optax's.
"""
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax

from lopt.config import check
from lopt.learned.features import decay_to_param, param_to_decay

NAMES = ("lr", "b1", "b2", "eps")
LR_RANGE = (1e-8, 1e3)
EPS_RANGE = (1e-11, 1e4)
MAX_BETA = 1.0 - math.exp(-10.0)  # param_to_decay(-1), in plain Python: no device use at import
# Inside Adam's square root: without it, backprop through an update (tbptt, merged) of a parameter
# whose gradient is exactly 0 (a dead ReLU unit) multiplies sqrt's infinite slope at 0 by 0: NaN.
EPS_ROOT = 1e-16


def check_values(lr: float, b1: float, b2: float, eps: float) -> None:
    """Configured initial values must lie in the representable ranges."""
    check(LR_RANGE[0] <= lr <= LR_RANGE[1], "lr", lr, f"in [{LR_RANGE[0]}, {LR_RANGE[1]}]")
    check(0 <= b1 <= MAX_BETA and 0 <= b2 <= MAX_BETA, "b1/b2", (b1, b2), f"in [0, {MAX_BETA:.6f}]")
    check(EPS_RANGE[0] <= eps <= EPS_RANGE[1], "eps", eps, f"in [{EPS_RANGE[0]}, {EPS_RANGE[1]}]")


def to_learned(lr: float, b1: float, b2: float, eps: float) -> dict[str, jax.Array]:
    """{lr, b1, b2, eps} in learned space, float32 scalars."""
    values = {k: jnp.asarray(x, jnp.float32) for k, x in zip(NAMES, (lr, b1, b2, eps))}
    return {"lr": 0.1 * jnp.log(values["lr"]), "b1": decay_to_param(values["b1"]), "b2": decay_to_param(values["b2"]),
            "eps": 0.1 * jnp.log(values["eps"])}


def to_natural(learned: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """{lr, b1, b2, eps} in natural units from learned space (clipped to the valid ranges)."""
    return {
        "lr": jnp.clip(jnp.exp(10.0 * learned["lr"]), *LR_RANGE),
        "b1": param_to_decay(jnp.clip(learned["b1"], -1.0, 0.0)),
        "b2": param_to_decay(jnp.clip(learned["b2"], -1.0, 0.0)),
        "eps": jnp.clip(jnp.exp(10.0 * learned["eps"]), *EPS_RANGE),
    }


def adam(learned: Mapping[str, jax.Array]) -> optax.GradientTransformation:
    """optax.adam at the (possibly traced) hyperparameters given in learned space."""
    hp = to_natural(learned)
    return optax.adam(hp["lr"], hp["b1"], hp["b2"], hp["eps"], eps_root=EPS_ROOT)
