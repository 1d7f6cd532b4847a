"""Export a learned optimizer with fixed meta-parameters as an optax transformation, or load a
trained one as such in one call (`optimizer("pretrained:<name>")`, `optimizer("<run dir>")`,
`optimizer("<a folder of lopt export>")`).

The result is an `optax.GradientTransformationExtraArgs`: `update(grads, state, params, loss=...)`
returns updates for `optax.apply_updates`, so a trained optimizer drops into any optax training
loop. It needs `params` (learned optimizers look at parameter values) and takes the loss as an
extra argument (0 when not given; small_fc_lopt does not use it). `num_steps`, the length of the
training it will run, feeds the optimizers with fraction-of-training inputs (hypernet).
"""
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lopt import learned
from lopt.io import theta_files


def as_optax(lopt: Any, theta: Any, num_steps: int | None = None) -> optax.GradientTransformationExtraArgs:
    """`lopt` with meta-parameters `theta` as an optax transformation for a training of `num_steps`
    updates (None: unknown)."""

    def init(params):
        return lopt.init(theta, params, num_steps)

    def update(grads, state, params=None, *, loss=None, **extra_args):
        if params is None:
            raise ValueError("A learned optimizer needs the parameters: call update(grads, state, params).")
        loss = jnp.asarray(0.0 if loss is None else loss, jnp.float32)
        new_params, state = lopt.update(theta, state, params, grads, loss)
        return jax.tree_util.tree_map(jnp.subtract, new_params, params), state

    return optax.GradientTransformationExtraArgs(init, update)


def load_trained(theta: str | Path) -> tuple[Any, Any]:
    """The learned optimizer that `theta` names (a meta-train run directory, its final_theta/ or
    best_theta/, or a shipped `pretrained:<name>`), built with the architecture its run recorded,
    and its meta-parameters (an exported folder, `lopt export`, checked against its SHA-256s). A bad
    path or a damaged export raises a `UserError` saying what is expected."""
    path = theta_files.theta_path(str(theta))
    assert path is not None  # theta_path returns None only for None
    lopt = learned.build(theta_files.recorded_architecture(
        path, str(theta), "give a meta-train run directory (or its final_theta/ or best_theta/), which holds one"))
    return lopt, learned.load_theta(lopt, path)


def optimizer(theta: str | Path, num_steps: int | None = None) -> optax.GradientTransformationExtraArgs:
    """The trained learned optimizer that `theta` names (see `load_trained`) as an optax
    transformation for a training of `num_steps` updates (None: unknown): `update(grads, state,
    params, loss=loss)`."""
    return as_optax(*load_trained(theta), num_steps)
