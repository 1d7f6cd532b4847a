"""Checkpoints of pytrees through orbax: atomic saves, latest-step restore."""
import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from lopt.errors import UserError

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO


class Checkpointer:
    """Keeps the last `max_to_keep` checkpoints of a state pytree under `directory`.

    Orbax writes each step to a temporary directory and renames it when complete, so a run killed
    mid-save leaves the previous checkpoint intact.
    """

    def __init__(self, directory: Path, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def save(self, step: int, state: Any) -> None:
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, step: int, like: Any) -> Any:
        """The state saved at `step`, with the structure, shapes and dtypes of `like`."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self._manager.close()


def save_tree(path: Path, tree: Any) -> None:
    """Save one pytree (e.g. final learned-optimizer parameters) atomically to `path`."""
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(Path(path).absolute(), tree)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): tuple(x.shape) for path, x in leaves}


def load_tree(path: Path, like: Any) -> Any:
    """The pytree saved at `path`; it must have the structure and shapes of `like`."""
    path = Path(path).absolute()
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    with ocp.StandardCheckpointer() as ckptr:
        try:
            stored = _shapes(ckptr.metadata(path).item_metadata.tree)
        except Exception as err:  # not an orbax checkpoint, or unreadable
            raise UserError(f"{path} is not a readable checkpoint: {str(err).splitlines()[0]}") from None
        expected = _shapes(abstract)
        if stored != expected:
            diff = sorted(set(stored.items()) ^ set(expected.items()))[0][0]
            raise UserError(f"The checkpoint {path} does not match what is being restored: at {diff} "
                            f"it holds {stored.get(diff, 'nothing')}, expected {expected.get(diff, 'nothing')}.")
        return ckptr.restore(path, abstract)
