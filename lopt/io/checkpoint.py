"""Checkpoints of pytrees through orbax: atomic saves, verified restores.

A meta-training checkpoint holds the state and a manifest (path, shape, dtype and SHA-256 of every
leaf) in one orbax step directory, which orbax writes under a temporary name and renames when
complete: a run killed mid-save leaves the previous checkpoint intact, and the partial one is
ignored and removed when the directory is next opened. A restore checks the manifest against the
expected structure before reading and the restored bytes against the digests after, so a corrupted
or incompatible checkpoint is an error naming its directory, never silently wrong numbers (a run
resumes from the latest checkpoint that verifies: `lopt.commands.outer_loop.restore`).
"""
import hashlib
import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from lopt.errors import UserError
from lopt.io import disk

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO

Layout = dict[str, tuple]  # leaf path -> (shape, ...) or (shape, dtype)


class CorruptCheckpoint(UserError):
    """A checkpoint whose files cannot be read or whose arrays do not match the SHA-256s saved with
    them (a truncated file, a flipped byte): an earlier checkpoint may still be good."""


def _to_host(tree: Any) -> Any:
    """`tree`'s global values on the host; in a multi-process run, arrays sharded over other
    processes' devices are gathered (every process must call this)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def manifest(tree: Any) -> list[dict[str, Any]]:
    """Path, shape, dtype and SHA-256 of the bytes of every leaf of `tree`, in flatten order."""
    return _host_manifest(_to_host(tree))


def _host_manifest(tree: Any) -> list[dict[str, Any]]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    entries = []
    for path, x in leaves:
        a = np.asarray(x)
        entries.append({"path": jax.tree_util.keystr(path), "shape": list(a.shape), "dtype": str(a.dtype),
                        "sha256": hashlib.sha256(a.tobytes()).hexdigest()})
    return entries


def _layout(tree: Any, dtypes: bool = True) -> Layout:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): (tuple(x.shape), str(x.dtype)) if dtypes else (tuple(x.shape),)
            for p, x in leaves}


def _check_layout(path: Path, stored: Layout, expected: Layout) -> None:
    """Raise a UserError naming `path` and the first leaf where `stored` and `expected` differ."""
    if stored != expected:
        diff = sorted(set(stored.items()) ^ set(expected.items()))[0][0]
        raise UserError(f"The checkpoint {path} does not match what is being restored: at {diff} "
                        f"it holds {stored.get(diff, 'nothing')}, expected {expected.get(diff, 'nothing')}.")


class Checkpointer:
    """Keeps the last `max_to_keep` verified checkpoints of a state pytree under `directory`."""

    def __init__(self, directory: Path, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False,
                                               cleanup_tmp_directories=True)
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any) -> None:
        """Write `state` and its manifest as checkpoint `step`, atomically; returns when durable. A
        full disk is a UserError saying so (the partial checkpoint is removed when the run resumes)."""
        entries = manifest(state)
        try:
            self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                             manifest=ocp.args.JsonSave(entries)))
            self._manager.wait_until_finished()
        except Exception as err:
            if not disk.is_out_of_space(err):
                raise
            needed = sum(int(np.prod(e["shape"])) * np.dtype(e["dtype"]).itemsize for e in entries)
            raise disk.out_of_space(err, f"checkpoint {step}", self.directory, needed) from None

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """The iterations checkpointed, latest first."""
        return sorted(self._manager.all_steps(), reverse=True)

    def _unreadable(self, step: int, err: Exception) -> CorruptCheckpoint:
        first = (str(err).strip().splitlines() or [""])[0][:300]
        return CorruptCheckpoint(f"The checkpoint {self.directory / str(step)} cannot be read ({type(err).__name__}: "
                                 f"{first}): it is corrupted or was not written by this version of lopt.")

    def restore(self, step: int, like: Any) -> Any:
        """The state saved at `step`, with the structure, shapes and dtypes of `like` (arrays or
        shape-dtype structs), checked against the checkpoint's manifest and digests."""
        path = self.directory / str(step)
        try:
            entries = self._manager.restore(step, args=ocp.args.Composite(manifest=ocp.args.JsonRestore()))["manifest"]
            stored = {e["path"]: (tuple(e["shape"]), e["dtype"]) for e in entries}
        except Exception as err:  # missing, truncated or garbled manifest
            raise self._unreadable(step, err) from None
        _check_layout(path, stored, _layout(like))
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        try:
            args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            # on the host: in a multi-process run orbax restores arrays spanning every process's devices
            state = _to_host(self._manager.restore(step, args=args)["state"])
        except Exception as err:  # unreadable array data
            raise self._unreadable(step, err) from None
        for saved, restored in zip(entries, _host_manifest(state)):
            if saved["sha256"] != restored["sha256"]:
                raise CorruptCheckpoint(f"The checkpoint {path} is corrupted: the array at {saved['path']} does not "
                                        f"match the SHA-256 saved with it.")
        return state

    def close(self) -> None:
        self._manager.close()


def save_tree(path: Path, tree: Any) -> None:
    """Save one pytree (e.g. final learned-optimizer parameters) atomically to `path`, replacing
    what is there (a resumed run writes its final theta again)."""
    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(Path(path).absolute(), tree, force=True)
    except Exception as err:
        if not disk.is_out_of_space(err):
            raise
        raise disk.out_of_space(err, Path(path).name, Path(path).absolute()) from None


def load_tree(path: Path, like: Any) -> Any:
    """The pytree saved at `path`; it must have the structure and shapes of `like`."""
    path = Path(path).absolute()
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    if not path.is_dir() or not any((path / name).exists() for name in ("_CHECKPOINT_METADATA", "_METADATA")):
        what = "does not exist" if not path.exists() else "is a file" if not path.is_dir() else "holds no checkpoint"
        raise UserError(f"{path} {what}: a checkpoint is a directory written by lopt (e.g. a meta-train run's "
                        f"final_theta/).")
    with ocp.StandardCheckpointer() as ckptr:
        try:
            metadata = ckptr.metadata(path).item_metadata
            if metadata is None:
                raise ValueError("orbax finds no saved tree in it")
            stored = _layout(metadata.tree, dtypes=False)
        except Exception as err:  # not an orbax checkpoint, or unreadable
            raise UserError(f"{path} is not a readable checkpoint: {(str(err).splitlines() or [''])[0]}") from None
        _check_layout(path, stored, _layout(abstract, dtypes=False))
        return ckptr.restore(path, abstract)
