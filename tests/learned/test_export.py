import jax
import jax.numpy as jnp
import numpy as np
import optax

from lopt.learned import SmallFCLOpt
from lopt.learned.export import as_optax
from tests.quadratic import DATA, QUADRATIC, quadratic_unroll


def test_exported_optimizer_trains_like_the_unroll():
    """An optax loop with the exported transform follows the lopt training path step for step."""
    lopt = SmallFCLOpt()
    theta = lopt.init_theta(jax.random.PRNGKey(0))
    theta["nn"]["b2"] = jnp.array([-50.0, 2000.0])  # a strong, non-trivial step

    tx = as_optax(lopt, theta)
    params = QUADRATIC.init(None)
    state = tx.init(params)
    losses = []
    for _ in range(5):
        loss, grads = jax.value_and_grad(QUADRATIC.loss)(params, (jnp.zeros(1), 0))
        updates, state = tx.update(grads, state, params, loss=loss)
        params = optax.apply_updates(params, updates)
        losses.append(loss)

    unroll = quadratic_unroll(100)
    unroll = type(unroll)(unroll.task, lopt, unroll.schedule)
    inner = unroll.init(theta, jax.random.PRNGKey(0), 1, random_offset=False)
    _, out = unroll.run(theta, inner, DATA, 5, jnp.zeros((), jnp.int32), theta_batched=False)
    np.testing.assert_allclose(losses, out.loss[:, 0], rtol=1e-5)
    assert abs(losses[-1] - losses[0]) > 0.1  # the steps were large enough to matter
