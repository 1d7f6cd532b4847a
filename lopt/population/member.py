"""One member of a population, as a pure program: its init, outer iteration and exploit restart
(Metz, Freeman, Maheswaranathan, Sohl-Dickstein 2021, Training learned optimizers with randomly
initialized learned optimizers, arXiv:2101.07367).

A member's state is a `MetaTrainState` (its theta, outer-optimizer state, estimator states, key and
counters). Under self-training its outer optimizer is the learned optimizer itself run with another
member's theta (`trainer_theta`, `lopt.learned.export.as_optax`), so member i's theta moves by the
learned optimizer of its assigned member o_i on member i's meta-gradient; the outer state (the
learned optimizer's accumulators over theta_i) is the member's own. Under the control every member
is trained by the run's hand-designed outer optimizer and `trainer_theta` is unused. Backends run
these functions: vmapped over the members that share a truncation length (`local`), or one member
per Ray actor (`ray_backend`).

The learned outer update is clipped per value at `max_update` (`population.max_update`). A random
learned optimizer's step has no bound: its features are normalized per tensor, so its steps do not
shrink with the meta-gradient, and they grow with the parameters it moves. Measured on the
population preset without PBT (4 small_fc_lopt members, truncations of 10), an unclipped member's
update grew with its own theta (3-4% of ||theta|| per iteration, ||theta|| 3.1 -> 12.2 from outer
iteration 60 to 120); the two members it trained then took updates of norm 0.92-0.98 (0.02 at the
first iteration), reached ||theta|| 21 and had every update skipped as non-finite from iteration
130. The clip bounds each value's step, as the hand-designed control's Adam bounds it by its
learning rate (3e-3, the default): with 0.01 the same members grew linearly, at most 0.14 per
iteration, and stayed finite. With PBT the unclipped population collapsed after outer iteration 300
and the clipped ones did not (docs/population.md).
"""
from dataclasses import dataclass, replace
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lopt.base import Theta
from lopt.data import Dataset
from lopt.learned.export import as_optax
from lopt.meta_trainer import MetaTrainer, MetaTrainState, OuterStep


@dataclass(frozen=True)
class MemberProgram:
    """The pure functions of one member: `trainer` is the run's meta-trainer (its estimator's
    truncation length is replaced by the member's); `self_training` selects the outer optimizer;
    `max_update` (None: none) clips every value of the learned outer update."""

    trainer: MetaTrainer
    self_training: bool
    max_update: float | None = None

    def at(self, trunc_length: int, trainer_theta: Theta) -> MetaTrainer:
        """The meta-trainer of a member unrolling `trunc_length` steps per outer iteration, trained
        by `trainer_theta` under self-training."""
        estimator = replace(cast(Any, self.trainer.estimator), trunc_length=trunc_length)  # a TruncatedEstimator
        t = replace(self.trainer, estimator=estimator)
        if not self.self_training:
            return t
        return replace(t, outer_opt=clip_updates(as_optax(t.lopt, trainer_theta), self.max_update))

    def init(self, key: jax.Array, theta: Theta, trainer_theta: Theta) -> MetaTrainState:
        """A member starting from `theta`: fresh estimator states and outer state (the estimator's
        state does not depend on the truncation length)."""
        return self.at(1, trainer_theta).init(key, theta)

    def step(self, trunc_length: int, state: MetaTrainState, trainer_theta: Theta,
             data: tuple[Dataset | None, ...]) -> tuple[MetaTrainState, OuterStep]:
        """One outer iteration of the member, as `MetaTrainer.step` (non-finite truncations skip)."""
        return self.at(trunc_length, trainer_theta).step(state, data)

    def restart(self, state: MetaTrainState, theta: Theta, trainer_theta: Theta) -> MetaTrainState:
        """The loser of an exploit step: it takes the winner's `theta`; its estimator and outer
        states restart (drawn from its own key), its iteration count goes on."""
        return self.init(state.key, theta, trainer_theta)._replace(iteration=state.iteration)

    def initial(self, key: jax.Array, size: int, outer: jax.Array) -> MetaTrainState:
        """The population's first states, stacked over members: member i's theta is a fresh init
        from its own key, and its outer state is made for its trainer outer[i]'s theta."""
        k_theta, k_state = (jax.random.split(k, size) for k in jax.random.split(key))
        thetas = jax.vmap(self.trainer.lopt.init_theta)(k_theta)
        return jax.vmap(self.init)(k_state, thetas, member(thetas, outer))


def clip_updates(tx: optax.GradientTransformationExtraArgs,
                 max_update: float | None) -> optax.GradientTransformationExtraArgs:
    """`tx` with every value of its updates clipped to [-max_update, max_update] (None: `tx`); its
    state is `tx`'s, so a checkpoint does not depend on the clip."""
    if max_update is None:
        return tx

    def update(grads: Any, state: Any, params: Any = None, **extra_args: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params, **extra_args)
        return jax.tree_util.tree_map(lambda u: jnp.clip(u, -max_update, max_update), updates), state

    return optax.GradientTransformationExtraArgs(tx.init, update)


def member(tree: Any, i: int | jax.Array | np.ndarray) -> Any:
    """Entry (or entries, for an index array) `i` of `tree`, stacked over members."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def replace_member(tree: Any, i: int | jax.Array | np.ndarray, source: Any) -> Any:
    """`tree` (stacked over members) with entry `i` (or entries) set to `source`."""
    return jax.tree_util.tree_map(lambda x, s: x.at[i].set(s), tree, source)
