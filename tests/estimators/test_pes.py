from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.estimators import PES
from lopt.schedules import ConstantSchedule
from lopt.unroll import TruncatedUnroll
from lopt.unroll.augment import Augmentation
from tests.quadratic import DATA, QUADRATIC, LogLrSGD, quadratic_unroll


def _full_unroll_gradient(unroll, theta, key, steps, trunc):
    """d/dtheta of the sum over truncations of each truncation's mean loss, by backprop. The first
    problems are initialized from a constant theta, as PES initializes them (unperturbed, before any
    estimate); the problems that follow a reset are initialized from theta."""
    def objective(theta):
        state = unroll.init(jax.lax.stop_gradient(theta), key, 1, random_offset=False)
        _, out = unroll.run(theta, state, DATA, steps, jnp.zeros((), jnp.int32), theta_batched=False)
        return out.meta_loss.sum() / trunc
    return jax.grad(objective)(theta)


def _pes_total(unroll, theta, trunc, truncations, num_tasks=4096):
    """The sum of `truncations` consecutive PES estimates (the estimate of the whole unroll)."""
    pes = PES(std=0.01, trunc_length=trunc)
    state = pes.init(unroll, theta, jax.random.PRNGKey(0), num_tasks, random_offset=False)
    estimate = jax.jit(lambda s, k: pes.estimate(unroll, theta, s, DATA, k, jnp.zeros((), jnp.int32)))
    total = jnp.zeros_like(theta)
    for k in jax.random.split(jax.random.PRNGKey(1), truncations):
        est = estimate(state, k)
        total, state = total + est.grad, est.state
    return total


@pytest.mark.parametrize("length", [100, 7, 5])  # no reset; reset mid-truncation; reset on a last step
def test_pes_is_unbiased_for_the_whole_unroll_gradient(length):
    trunc, truncations = 5, 4
    unroll = quadratic_unroll(length)
    theta = LogLrSGD().init_theta(None)
    total = _pes_total(unroll, theta, trunc, truncations)
    # Every problem starts from the same init, so all tasks share this exact gradient.
    exact = _full_unroll_gradient(unroll, theta, jax.random.PRNGKey(0), trunc * truncations, trunc)
    np.testing.assert_allclose(total, exact, rtol=0.1)


@dataclass(frozen=True)
class InitScaledSGD:
    """SGD whose state, made at init, depends on theta: theta = [log lr, log initial step scale].
    The scale decays by half each step, so theta[1] acts on the loss only through each problem's
    init: an estimator that forgets a successor's init perturbation is biased in theta[1]."""

    def init_theta(self, key):
        return jnp.array([jnp.log(0.3), 0.0])

    def init(self, theta, params, num_steps=None):
        return jnp.exp(theta[1])

    def update(self, theta, scale, params, grads, loss):
        return params - jnp.exp(theta[0]) * scale * grads, 0.5 * scale + 0.5


@pytest.mark.parametrize("length", [5, 7])  # resets on every truncation's last step; mid-truncation
def test_pes_is_unbiased_when_the_optimizers_init_depends_on_theta(length):
    """The successor of a problem that resets is initialized from the truncation's perturbed theta,
    even when the reset is the truncation's last step: that perturbation counts in the next
    truncations' estimates."""
    trunc, truncations = 5, 4
    unroll = TruncatedUnroll(QUADRATIC, InitScaledSGD(), ConstantSchedule(length))
    theta = InitScaledSGD().init_theta(None)
    total = _pes_total(unroll, theta, trunc, truncations)
    exact = _full_unroll_gradient(unroll, theta, jax.random.PRNGKey(0), trunc * truncations, trunc)
    assert abs(float(exact[1])) > 0.1 * float(jnp.linalg.norm(exact))  # the init's share is not negligible
    np.testing.assert_allclose(total, exact, rtol=0.1, atol=0.03 * float(jnp.linalg.norm(exact)))


def test_pes_is_unbiased_with_task_augmentation():
    """Every problem trains its weights rescaled by a scale of its own (log-uniform in [0.5, 2], drawn
    again by each successor at a reset): the sum of the PES estimates is the mean over the tasks of
    each task's exact whole-unroll gradient."""
    trunc, truncations, num_tasks = 5, 4, 4096
    unroll = TruncatedUnroll(QUADRATIC, LogLrSGD(), ConstantSchedule(7), augment=Augmentation("global", (0.5, 2.0)))
    theta = LogLrSGD().init_theta(None)
    total = _pes_total(unroll, theta, trunc, truncations, num_tasks)

    def objective(theta):
        state = unroll.init(jax.lax.stop_gradient(theta), jax.random.PRNGKey(0), num_tasks, random_offset=False)
        _, out = unroll.run(theta, state, DATA, trunc * truncations, jnp.zeros((), jnp.int32), theta_batched=False)
        return out.meta_loss.sum() / trunc / num_tasks

    exact = jax.grad(objective)(theta)
    plain = _full_unroll_gradient(quadratic_unroll(7), theta, jax.random.PRNGKey(0), trunc * truncations, trunc)
    assert float(jnp.abs(exact - plain).max()) > 0.1 * float(jnp.abs(plain).max())  # the augmentation matters
    np.testing.assert_allclose(total, exact, rtol=0.1)
