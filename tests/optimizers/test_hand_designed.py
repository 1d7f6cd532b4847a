import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lopt.errors import ConfigError
from lopt.optimizers import hand_designed
from lopt.optimizers.hand_designed import Adam, NAdamW
from tests.conftest import compose


def test_optax_adapter_matches_optax_and_ignores_theta():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.1])}
    opt = Adam(0.1).build(10)
    state = opt.init("ignored", params)
    new, state = opt.update("ignored", state, params, grads, jnp.asarray(1.0))
    tx = optax.adam(0.1)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(new["w"], optax.apply_updates(params, updates)["w"])
    np.testing.assert_allclose(new["w"], [0.9, -2.1], rtol=1e-5)  # Adam's first step: lr * sign(g)


def _nadamw_reference(hp, num_steps, p, grads):
    """NAdamW written out in numpy from Metz et al. 2022, Practical tradeoffs between memory, compute,
    and performance in learned optimizers (arXiv:2203.11860), App. F (NAdam's bias correction as in
    optax)."""
    m = v = np.zeros_like(p)
    total = num_steps
    warm, const = hp["warmup_fraction"] * total, max(hp["constant_fraction"], hp["warmup_fraction"]) * total
    for t, g in enumerate(grads, start=1):
        step = t - 1
        if step < warm:
            lr = hp["lr"] * step / max(warm, 1.0)
        else:
            progress = min(max((step - const) / max(total - const, 1.0), 0.0), 1.0)
            low = hp["min_lr_mult"] * hp["lr"]
            lr = low + (hp["lr"] - low) * 0.5 * (1 + np.cos(np.pi * progress))
        g = g + hp["l2_weight_decay"] * p
        b1, b2 = hp["b1"], hp["b2"]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if hp["nesterov"]:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        u = m_hat / (np.sqrt(v / (1 - b2**t)) + hp["eps"])
        p = p - lr * (u + hp["adamw_weight_decay"] * p)
    return p


@pytest.mark.parametrize("nesterov", [0.0, 1.0])
@pytest.mark.parametrize("traced", [False, True])
def test_nadamw_follows_the_update_equations(nesterov, traced):
    hp = {"lr": 0.1, "b1": 0.8, "b2": 0.95, "eps": 1e-3, "nesterov": nesterov, "l2_weight_decay": 0.05,
          "adamw_weight_decay": 0.02, "warmup_fraction": 0.2, "constant_fraction": 0.4, "min_lr_mult": 0.1}
    num_steps = 10
    grads = np.random.default_rng(0).normal(size=(num_steps, 3))
    p0 = np.array([1.0, -0.5, 2.0])

    def train(values):
        opt = NAdamW().build(num_steps, **values)
        params = jnp.asarray(p0, jnp.float32)
        state = opt.init(None, params)
        for g in grads:
            params, state = opt.update(None, state, params, jnp.asarray(g, jnp.float32), jnp.asarray(0.0))
        return params

    if traced:  # as in a sweep: every hyperparameter, nesterov included, is a traced value
        got = jax.jit(train)({k: jnp.asarray(v) for k, v in hp.items()})
    else:
        got = train(hp)
    np.testing.assert_allclose(got, _nadamw_reference(hp, num_steps, p0, grads), rtol=1e-4, atol=1e-6)


def test_nadamw_search_space_is_practical_tradeoffs_appendix_f():
    n = 40_000
    s = NAdamW().search_space(np.random.default_rng(0), n)
    assert set(s) == set(NAdamW().hyperparameters())  # all 10 hyperparameters are searched
    assert 1e-5 <= s["lr"].min() and s["lr"].max() <= 1.0
    assert np.median(np.log10(s["lr"])) == pytest.approx(-2.5, abs=0.05)  # log-uniform
    assert 1e-3 <= (1 - s["b1"]).min() and (1 - s["b2"]).min() >= 1e-5 - 1e-12
    assert 1e-8 <= s["eps"].min() and s["eps"].max() <= 1e4
    assert s["nesterov"].mean() == pytest.approx(0.5, abs=0.01)
    l2_off, wd_off = s["l2_weight_decay"] == 0, s["adamw_weight_decay"] == 0
    assert l2_off.mean() == pytest.approx(1 / 3, abs=0.01) and wd_off.mean() == pytest.approx(1 / 3, abs=0.01)
    assert not (l2_off & wd_off).any()
    assert s["l2_weight_decay"].max() <= 0.1 and s["l2_weight_decay"][~l2_off].min() >= 1e-5
    assert (s["min_lr_mult"] == 0).mean() == pytest.approx(0.5, abs=0.01)
    assert (s["warmup_fraction"] == 0).mean() == pytest.approx(0.5, abs=0.01) and s["warmup_fraction"].max() <= 0.1
    assert s["constant_fraction"].mean() == pytest.approx(0.5, abs=0.01)


def test_lr_only_optimizers_search_learning_rates_of_practical_tradeoffs():
    s = hand_designed.SGDM().search_space(np.random.default_rng(0), 1000)
    assert list(s) == ["lr"] and s["lr"].min() >= 1e-7 and s["lr"].max() <= 1.0


def test_every_optimizer_option_builds_from_its_config():
    for name in hand_designed.REGISTRY.names():
        opt = hand_designed.from_config(compose("evaluate", f"optimizer={name}")["optimizer"])
        params = {"w": jnp.ones(3)}
        built = opt.build(20)
        new, _ = built.update(None, built.init(None, params), params, {"w": jnp.ones(3)}, jnp.asarray(1.0))
        assert np.all(np.asarray(new["w"]) < 1.0), name  # a descent step


def test_bad_nadamw_values_are_config_errors():
    with pytest.raises(ConfigError, match="optimizer.warmup_fraction=1.5 is invalid"):
        hand_designed.from_config(compose("evaluate", "optimizer=nadamw", "optimizer.warmup_fraction=1.5")["optimizer"])
