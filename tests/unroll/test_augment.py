"""Task augmentation: reparameterized weights drawn per inner problem (lopt.unroll.augment)."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.commands import meta_train
from lopt.config import from_config
from lopt.errors import ConfigError
from lopt.schedules import ConstantSchedule
from lopt.tasks import Task
from lopt.unroll import FinalLoss, TruncatedUnroll
from lopt.unroll.augment import Augmentation
from tests.conftest import CHEAP, compose_meta_train
from tests.quadratic import DATA

ZERO = jnp.zeros((), jnp.int32)
CURV = {"w": jnp.array([[1.0, 0.5], [0.3, 2.0]]), "b": jnp.array(0.7)}

# Two tensors with random inits (a matrix and a scalar): a quadratic, so gradients are known.
TWO = Task("two", lambda k: {"w": jax.random.normal(k, (2, 2)), "b": jax.random.normal(jax.random.fold_in(k, 1), ())},
           lambda p, batch: 0.5 * sum(jnp.sum(CURV[k] * p[k] ** 2) for k in p) + 0.0 * jnp.sum(batch[0]), 1, 1e6)


@dataclass(frozen=True)
class GradientRecorder:
    """Takes no step and keeps the last gradient it was given as its state."""

    def init(self, theta, params, num_steps=None):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def update(self, theta, state, params, grads, loss):
        return params, grads


def _times(scale, x):
    """[problems, ...] scales times [problems, *shape] values (global/tensor scales are [problems])."""
    return scale.reshape(scale.shape + (1,) * (x.ndim - scale.ndim)) * x


def _unroll(level, meta_loss=None, length=10, low=1e-3, high=1e3):
    kwargs = {} if meta_loss is None else {"meta_loss": meta_loss}
    return TruncatedUnroll(TWO, GradientRecorder(), ConstantSchedule(length), augment=Augmentation(level, (low, high)),
                           **kwargs)


@pytest.mark.parametrize("level", ["global", "tensor", "parameter"])
def test_the_loss_at_init_is_unchanged_and_the_gradient_is_scaled_by_s(level):
    """A problem trains p' = p0 / s on L(p' s): same loss as the task's at p0, gradient s * dL/dp(p0)."""
    plain, aug = _unroll("none"), _unroll(level)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    p_state = jax.vmap(lambda k: plain.fresh(None, k, ZERO))(keys)
    a_state = jax.vmap(lambda k: aug.fresh(None, k, ZERO))(keys)
    assert p_state.scale is None
    scale = a_state.scale
    for k in CURV:  # the problem trains p0 / s, from the unaugmented problem's init p0
        np.testing.assert_allclose(_times(scale[k], a_state.params[k]), p_state.params[k], rtol=1e-6)
    (_, p_out), (a_state2, a_out) = (u.run(None, s, DATA, 1, ZERO, theta_batched=False)
                                     for u, s in ((plain, p_state), (aug, a_state)))
    np.testing.assert_allclose(a_out.loss, p_out.loss, rtol=1e-5)
    np.testing.assert_allclose(a_out.meta_loss, p_out.meta_loss, rtol=1e-5)
    plain_grads = jax.vmap(jax.grad(lambda p: TWO.loss(p, (jnp.zeros(1),))))(p_state.params)
    for k in CURV:
        assert float(jnp.abs(scale[k] - 1).max()) > 0.1  # a real rescaling
        np.testing.assert_allclose(a_state2.opt_state[k], _times(scale[k], plain_grads[k]), rtol=1e-5)


def test_levels_share_one_scale_per_problem_per_tensor_or_per_parameter():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(())}
    key = jax.random.PRNGKey(0)
    g = Augmentation("global").sample(key, params)
    assert g["w"].shape == () and float(g["w"]) == float(g["b"])
    t = Augmentation("tensor").sample(key, params)
    assert t["w"].shape == () and float(t["w"]) != float(t["b"])
    p = Augmentation("parameter").sample(key, params)
    assert p["w"].shape == (2, 3) and len(np.unique(np.asarray(p["w"]))) == 6
    assert Augmentation("none").sample(key, params) is None


def test_scales_are_log_uniform_in_the_range():
    draws = jax.vmap(lambda k: Augmentation("global", (1e-2, 1e4)).sample(k, {"x": jnp.zeros(())})["x"])(
        jax.random.split(jax.random.PRNGKey(0), 4000))
    logs = np.log10(np.asarray(draws))
    assert logs.min() >= -2 and logs.max() <= 4
    assert abs(logs.mean() - 1.0) < 0.1 and abs(np.mean(logs < 0) - 1 / 3) < 0.03  # uniform in log


def test_a_problem_keeps_its_scale_until_it_resets_and_its_successor_draws_a_new_one():
    unroll = _unroll("global", length=4)
    state = jax.vmap(lambda k: unroll.fresh(None, k, ZERO))(jax.random.split(jax.random.PRNGKey(1), 3))
    both = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, x]), state)  # antithetic copies
    mid, _ = unroll.run(None, both, DATA, 3, ZERO, theta_batched=False, branches=2)
    np.testing.assert_array_equal(mid.scale["w"], both.scale["w"])
    after, out = unroll.run(None, mid, DATA, 2, ZERO, theta_batched=False, branches=2)
    assert np.asarray(out.reset[0]).all()
    assert (np.asarray(after.scale["w"]) != np.asarray(both.scale["w"])).all()
    np.testing.assert_array_equal(after.scale["w"][:3], after.scale["w"][3:])  # branches share their successor


def test_final_meta_loss_is_the_loss_of_the_task_parameters():
    """An at-end meta-loss evaluates the task at p' * s: with no steps taken, the task's loss at p0."""
    plain, aug = (_unroll(level, FinalLoss(), length=2) for level in ("none", "global"))
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    outs = [u.run(None, jax.vmap(lambda k, u=u: u.fresh(None, k, ZERO))(keys), DATA, 2, ZERO, theta_batched=False)[1]
            for u in (plain, aug)]
    assert float(jnp.abs(outs[0].meta_loss[1]).min()) > 0
    np.testing.assert_allclose(outs[1].meta_loss, outs[0].meta_loss, rtol=1e-5)


@pytest.mark.parametrize("node, match", [
    ({"level": "layer"}, r"^augment\.level='layer' is invalid: it must be one of none, global, tensor, parameter\."),
    ({"range": [10.0, 1.0]}, r"^augment\.range=\[10\.0, 1\.0\] is invalid: it must be \[low, high\] with 0 < low <= high"),
    ({"range": [0.0, 1.0]}, r"^augment\.range=\[0\.0, 1\.0\] is invalid"),
    ({"range": [1.0]}, r"^augment\.range=\[1\.0\] is invalid"),
])
def test_bad_augmentation_settings_are_config_errors(node, match):
    with pytest.raises(ConfigError, match=match):
        from_config(Augmentation, node, "augment")


def test_the_meta_train_node_augments_every_training_unroll():
    c = meta_train.build(compose_meta_train(*CHEAP, "augment.level=tensor", "augment.range=[0.1,10]"))
    assert all(u.augment == Augmentation("tensor", (0.1, 10.0)) for u in c.unrolls)
    assert meta_train.build(compose_meta_train(*CHEAP)).unrolls[0].augment.level == "none"
