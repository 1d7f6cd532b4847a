"""The self-training outer step: member i's theta is updated by the learned optimizer running with
member outer[i]'s current theta, checked against the same update made by hand."""
import jax
import jax.numpy as jnp
import numpy as np

from lopt.learned import SmallFCLOpt
from lopt.population import self_training

LOPT = SmallFCLOpt(step_mult=0.01)
OUTER = jnp.asarray([1, 2, 0])  # 0 <- 1, 1 <- 2, 2 <- 0


def _members(n=3):
    thetas = [LOPT.init_theta(jax.random.PRNGKey(i)) for i in range(n)]
    grads = [jax.tree_util.tree_map(lambda x, i=i: jax.random.normal(jax.random.PRNGKey(10 + i), x.shape), t)
             for i, t in enumerate(thetas)]
    return thetas, grads


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_each_member_is_updated_by_its_trainers_current_theta():
    thetas, grads = _members()
    stacked = _stack(thetas)
    states = self_training.init(LOPT, stacked, OUTER)
    new, new_states = jax.jit(lambda t, s, g: self_training.update(LOPT, t, s, g, OUTER))(stacked, states, _stack(grads))
    zero, step, init = jnp.zeros(()), jax.jit(LOPT.update), jax.jit(LOPT.init)
    for i in range(3):
        trainer = thetas[int(OUTER[i])]
        by_hand, state = step(trainer, init(trainer, thetas[i]), thetas[i], grads[i], zero)
        _close(self_training.member(new, i), by_hand)
        _close(self_training.member(new_states, i), state)
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(stacked))]
    assert max(moved) > 0
    # another trainer gives another step: the assignment matters
    other, _ = jax.jit(lambda t, s, g: self_training.update(LOPT, t, s, g, jnp.asarray([2, 0, 1])))(
        stacked, states, _stack(grads))
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree_util.tree_leaves(other), jax.tree_util.tree_leaves(new)))


def test_an_exploit_copies_the_winners_theta_and_restarts_the_losers_state():
    thetas, grads = _members()
    stacked = _stack(thetas)
    states = self_training.init(LOPT, stacked, OUTER)
    stacked2, states2 = jax.jit(lambda t, s, g: self_training.update(LOPT, t, s, g, OUTER))(
        stacked, states, _stack(grads))  # the states move
    copied, restarted = self_training.restart(LOPT, stacked2, states2, OUTER, loser=0, winner=2)
    _close(self_training.member(copied, 0), self_training.member(stacked2, 2))
    _close(self_training.member(copied, 1), self_training.member(stacked2, 1))  # the others unchanged
    _close(self_training.member(restarted, 0), LOPT.init(self_training.member(stacked2, 1), self_training.member(stacked2, 2)))
    _close(self_training.member(restarted, 2), self_training.member(states2, 2))
    assert int(self_training.member(states2, 0).iteration) == 1 and int(self_training.member(restarted, 0).iteration) == 0
