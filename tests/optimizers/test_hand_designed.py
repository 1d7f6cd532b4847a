import jax.numpy as jnp
import numpy as np
import optax

from lopt.optimizers.hand_designed import Adam


def test_optax_adapter_matches_optax_and_ignores_theta():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.1])}
    opt = Adam(0.1).build()
    state = opt.init("ignored", params)
    new, state = opt.update("ignored", state, params, grads, jnp.asarray(1.0))
    tx = optax.adam(0.1)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(new["w"], optax.apply_updates(params, updates)["w"])
    np.testing.assert_allclose(new["w"], [0.9, -2.1], rtol=1e-5)  # Adam's first step: lr * sign(g)
