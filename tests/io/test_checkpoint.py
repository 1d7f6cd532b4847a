import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.commands import meta_train
from lopt.errors import UserError
from lopt.io.checkpoint import Checkpointer, CorruptCheckpoint
from lopt.meta_trainer import MetaTrainState


def test_meta_train_state_round_trips_through_a_checkpoint(tiny_cfg, tmp_path):
    c = meta_train.build(tiny_cfg)
    state = c.trainer.init(jax.random.PRNGKey(0))
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(5, state)
    assert ckpt.latest_step() == 5
    restored = ckpt.restore(5, c.trainer.init(jax.random.PRNGKey(1)))
    ckpt.close()
    assert isinstance(restored, MetaTrainState)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("ckpt/*tmp*"))


def _state(scale=1.0):
    return {"w": jnp.arange(1000.0) * scale, "key": jax.random.PRNGKey(3), "step": jnp.zeros((), jnp.int32)}


def _garble(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_garbled_array_bytes_are_caught_by_the_checksum(tmp_path):
    """Orbax reads flipped array bytes back without complaint; the manifest's digest catches them."""
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, _state())
    ckpt.save(2, _state(2.0))
    biggest = max((tmp_path / "2").rglob("ocdbt.process_0/d/*"), key=lambda p: p.stat().st_size)
    _garble(biggest)
    with pytest.raises(CorruptCheckpoint, match=f"{tmp_path / '2'} is corrupted: the array at \\['w'\\] does not "
                                                "match the SHA-256 saved with it"):
        ckpt.restore(2, _state())
    np.testing.assert_array_equal(ckpt.restore(1, _state())["w"], np.arange(1000.0))
    ckpt.close()


def test_unreadable_or_incompatible_checkpoints_are_errors_naming_them(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, _state())
    with pytest.raises(UserError, match=f"{tmp_path / '1'} does not match .* at \\['w'\\] it holds \\(\\(1000,\\), "
                                        "'float32'\\), expected \\(\\(3,\\), 'float32'\\)"):
        ckpt.restore(1, {**_state(), "w": jnp.zeros(3)})
    (tmp_path / "1" / "manifest" / "metadata").write_text('{"trunc')
    with pytest.raises(CorruptCheckpoint, match=f"{tmp_path / '1'} cannot be read \\(JSONDecodeError.*corrupted"):
        ckpt.restore(1, _state())
    ckpt.close()


def test_a_save_cut_short_leaves_the_previous_checkpoint_and_is_cleaned_up(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, _state())
    ckpt.close()
    half = tmp_path / "2.orbax-checkpoint-tmp-7"
    shutil.copytree(tmp_path / "1", half)
    (half / "commit_success.txt").unlink()
    ckpt = Checkpointer(tmp_path)
    assert ckpt.latest_step() == 1
    np.testing.assert_array_equal(ckpt.restore(1, _state())["w"], np.arange(1000.0))
    ckpt.save(2, _state(2.0))  # the next save goes through; the partial directory is gone
    np.testing.assert_array_equal(ckpt.restore(2, _state())["w"], 2 * np.arange(1000.0))
    ckpt.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]
