import jax
import numpy as np

from lopt import meta_train
from lopt.checkpoint import Checkpointer


def test_meta_train_state_round_trips_through_a_checkpoint(tiny_cfg, tmp_path):
    c = meta_train.build(tiny_cfg)
    state = c.trainer.init(jax.random.PRNGKey(0))
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(5, state)
    assert ckpt.latest_step() == 5
    restored = ckpt.restore(5, c.trainer.init(jax.random.PRNGKey(1)))
    ckpt.close()
    assert isinstance(restored, meta_train.MetaTrainState)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("ckpt/*tmp*"))
