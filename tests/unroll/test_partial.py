"""Meta-training part of theta (lopt.unroll.partial): the estimator sees and perturbs only the
trainable part, the outer optimizer updates only it, and the frozen part stays exactly as it was."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt.estimators import PES
from lopt.meta_trainer import MetaTrainer, metric_record
from lopt.schedules import ConstantSchedule
from lopt.unroll import TruncatedUnroll
from lopt.unroll.partial import PartialUnroll, merge, split
from tests.quadratic import DATA, QUADRATIC

ZERO = jnp.zeros((), jnp.int32)


@dataclass(frozen=True)
class TwoPartSGD:
    """SGD with learned per-coordinate log learning rates (theta["lr"]) times a learned factor
    (theta["gain"]); its state is the gain it was last given (at init or update)."""

    trainable_keys: tuple[str, ...] | None = ("lr",)

    def init_theta(self, key):
        return {"lr": jnp.log(jnp.array([0.1, 0.2])), "gain": jnp.array(0.8)}

    def init(self, theta, params, num_steps=None):
        return theta["gain"]

    def update(self, theta, state, params, grads, loss):
        return params - theta["gain"] * jnp.exp(theta["lr"]) * grads, theta["gain"]


def _unroll(lopt=TwoPartSGD()):
    return TruncatedUnroll(QUADRATIC, lopt, ConstantSchedule(6))


def test_split_and_merge_partition_theta_by_top_level_keys():
    theta = TwoPartSGD().init_theta(None)
    trainable, frozen = split(theta, ("lr",))
    assert set(trainable) == {"lr"} and set(frozen) == {"gain"}
    assert merge(trainable, frozen) == theta
    for bad in [("nope",), ()]:
        with pytest.raises(ValueError, match="must be a non-empty subset of theta's keys"):
            split(theta, bad)


def test_a_partial_unroll_is_the_unroll_with_the_frozen_part_merged_back():
    unroll, theta = _unroll(), TwoPartSGD().init_theta(None)
    trainable, frozen = split(theta, ("lr",))
    partial = PartialUnroll(unroll, frozen)
    state = partial.init(trainable, jax.random.PRNGKey(0), 3, random_offset=False)
    batched = {"lr": jnp.log(jnp.array([[0.1, 0.1], [0.3, 0.2], [0.05, 0.4]]))}
    ours = partial.run(batched, state, DATA, 8, ZERO)
    whole = {**batched, "gain": jnp.full((3,), 0.8)}
    theirs = unroll.run(whole, state, DATA, 8, ZERO)
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
        np.testing.assert_array_equal(a, b)
    shared = partial.run(trainable, state, DATA, 8, ZERO, theta_batched=False)
    for a, b in zip(jax.tree_util.tree_leaves(shared),
                    jax.tree_util.tree_leaves(unroll.run(theta, state, DATA, 8, ZERO, theta_batched=False))):
        np.testing.assert_array_equal(a, b)


def _trainer(lopt):
    # AdamW's weight decay would move a leaf whose meta-gradient is merely zeroed: frozen ones must not.
    return MetaTrainer((_unroll(lopt),), ("quadratic",), lopt, PES(std=0.05, trunc_length=3),
                       optax.adamw(0.05, weight_decay=0.1), ConstantSchedule(6), 4)


def test_meta_training_moves_only_the_trainable_part_and_never_perturbs_the_frozen_one():
    trainer = _trainer(TwoPartSGD())
    state = trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    assert set(state.estimator_state[0].accum) == {"lr"}  # PES accumulates only trainable leaves
    moments = [x for x in jax.tree_util.tree_leaves(state.outer_opt_state) if x.ndim]
    assert moments and all(x.shape == (2,) for x in moments)  # AdamW's moments: of "lr" only
    step = jax.jit(trainer.step)
    for _ in range(3):
        state, report = step(state, (DATA,))
        assert np.isfinite(metric_record(report)["outer/grad_norm"])
    assert float(np.abs(state.theta["lr"] - theta0["lr"]).max()) > 1e-3
    np.testing.assert_array_equal(state.theta["gain"], theta0["gain"])
    # every problem of both antithetic branches trained with the exact frozen gain
    np.testing.assert_array_equal(state.estimator_state[0].inner.opt_state, np.float32(0.8))


def test_without_trainable_keys_all_of_theta_is_meta_trained():
    trainer = _trainer(TwoPartSGD(trainable_keys=None))
    state = trainer.init(jax.random.PRNGKey(0))
    theta0 = jax.device_get(state.theta)
    assert set(state.estimator_state[0].accum) == {"lr", "gain"}
    state, _ = jax.jit(trainer.step)(state, (DATA,))
    assert all(float(np.abs(state.theta[k] - theta0[k]).max()) > 1e-4 for k in theta0)
    assert len(set(np.asarray(state.estimator_state[0].inner.opt_state).tolist())) > 1  # the gain is perturbed
