"""Reference truncation gradients on the quadratic of tests/quadratic.py, by backprop through a
plain Python loop that resets by hand (independent of lopt's scan and vmap)."""
import jax
import jax.numpy as jnp

from lopt.tasks import Task
from tests.quadratic import CURVATURE, QUADRATIC


def truncation_loss(theta, params, step, length, trunc):
    """Mean loss over `trunc` SGD steps from a constant `params` at `step` of a `length`-step
    problem; at `length` the problem restarts from its init."""
    params = jax.lax.stop_gradient(params)
    losses = []
    for _ in range(trunc):
        losses.append(0.5 * jnp.sum(CURVATURE * params**2))
        params, step = params - jnp.exp(theta) * CURVATURE * params, step + 1
        if step >= length:
            params, step = QUADRATIC.init(None), 0
    return sum(losses) / trunc


def params_after(theta, steps, length):
    """The quadratic's parameters after `steps` SGD steps from its init (resets included)."""
    params, step = QUADRATIC.init(None), 0
    for _ in range(steps):
        params, step = params - jnp.exp(theta) * CURVATURE * params, step + 1
        if step >= length:
            params, step = QUADRATIC.init(None), 0
    return params, step


def truncation_gradient(theta, done, length, trunc):
    """d/dtheta of the mean loss of the truncation that starts after `done` steps."""
    params, step = params_after(theta, done, length)
    return jax.grad(truncation_loss)(theta, params, step, length, trunc)


# Half of its problems start at -init and have a NaN loss (log of a negative number, times 0); the
# others are exactly QUADRATIC (same init, loss and gradient).
HALF_NAN = Task("half_nan", lambda k: jnp.where(jax.random.bernoulli(k), 1.0, -1.0) * QUADRATIC.init(None),
                lambda p, b: QUADRATIC.loss(p, b) + 0.0 * jnp.log(p[0]), 1, 1e6)
