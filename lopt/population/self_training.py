"""The self-training outer step of a population (Metz, Freeman, Maheswaranathan, Sohl-Dickstein
2021, arXiv:2101.07367): every member's theta is a learned optimizer's meta-parameters, and the
same learned optimizer, run with another member's *current* theta, updates it with its
meta-gradient. Members are stacked along a leading axis (members that share shapes advance in one
compiled program), and `outer[i]` names the member that trains member i (`pbt.Assignments`).

Each member keeps the state of the learned optimizer that trains its theta (its momenta and the
like over theta); it restarts when the member's theta is replaced by another's at an exploit step
(`restart`). No loss is passed to the outer learned optimizer (0), as with `outer_opt=lopt`.
"""
from typing import Any

import jax
import jax.numpy as jnp

from lopt.base import LearnedOptimizer, OptState, Theta


def trainers(thetas: Theta, outer: jax.Array) -> Theta:
    """Per member i, the current theta of member outer[i]: the meta-parameters that train it."""
    return member(thetas, outer)


def init(lopt: LearnedOptimizer, thetas: Theta, outer: jax.Array) -> OptState:
    """The outer learned optimizer's state for every member's theta (stacked over members)."""
    return jax.vmap(lopt.init)(trainers(thetas, outer), thetas)


def update(lopt: LearnedOptimizer, thetas: Theta, states: OptState, grads: Theta,
           outer: jax.Array) -> tuple[Theta, OptState]:
    """Every member's theta after one step of the learned optimizer with its trainer's current
    theta on its meta-gradient (`grads`, stacked like `thetas`), and the new states."""
    def one(trainer: Theta, state: Any, theta: Theta, grad: Theta) -> tuple[Theta, Any]:
        return lopt.update(trainer, state, theta, grad, jnp.zeros((), jnp.float32))

    return jax.vmap(one)(trainers(thetas, outer), states, thetas, grads)


def member(tree: Any, i: int | jax.Array) -> Any:
    """Member `i`'s entry of `tree` (stacked over members)."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def replace(tree: Any, i: int, source: Any) -> Any:
    """`tree` (stacked over members) with member `i`'s entry set to `source` (unstacked)."""
    return jax.tree_util.tree_map(lambda x, s: x.at[i].set(s), tree, source)


def restart(lopt: LearnedOptimizer, thetas: Theta, states: OptState, outer: jax.Array, loser: int,
            winner: int) -> tuple[Theta, OptState]:
    """An exploit step on the device arrays: member `loser` takes `winner`'s theta, and its outer
    state restarts for its (new) trainer outer[loser]."""
    theta = member(thetas, winner)
    thetas = replace(thetas, loser, theta)
    return thetas, replace(states, loser, lopt.init(member(thetas, outer[loser]), theta))
