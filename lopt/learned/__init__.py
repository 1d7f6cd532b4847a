"""Learned optimizer registry: the `lopt/` config group names an architecture built here.

A `lopt` node may also name a `checkpoint`: the meta-parameters saved by a meta-train run (its run
directory or its `final_theta/`), used instead of a fresh initialization.
"""
from pathlib import Path
from typing import Any, Mapping

import jax

from lopt import checkpoint
from lopt.config import Registry, to_plain
from lopt.errors import UserError
from lopt.learned.fc_lopt import FCLOpt
from lopt.learned.hypernet import Hypernet
from lopt.learned.learnable_adam import LearnableAdam
from lopt.learned.nn_adam import NNAdam
from lopt.learned.rnn_mlp_lopt import RNNMLPLOpt
from lopt.learned.small_fc_lopt import SmallFCLOpt

REGISTRY = Registry("learned optimizer")
REGISTRY.register("small_fc_lopt")(SmallFCLOpt)
REGISTRY.register("fc_lopt")(FCLOpt)
REGISTRY.register("learnable_adam")(LearnableAdam)
REGISTRY.register("nn_adam")(NNAdam)
REGISTRY.register("rnn_mlp_lopt")(RNNMLPLOpt)
REGISTRY.register("hypernet")(Hypernet)

__all__ = ["REGISTRY", "FCLOpt", "Hypernet", "LearnableAdam", "NNAdam", "RNNMLPLOpt", "SmallFCLOpt", "build", "checkpoint_path", "load_theta"]


def build(cfg: Mapping[str, Any], node: str = "lopt") -> Any:
    """The learned optimizer named by the `lopt`-style config node at path `node`."""
    values = {k: v for k, v in (to_plain(cfg) or {}).items() if k != "checkpoint"}
    return REGISTRY.build(values, node)


def checkpoint_path(cfg: Mapping[str, Any], node: str = "lopt") -> Path | None:
    """The final_theta directory that `<node>.checkpoint` names, checked to exist (None if unset)."""
    given = (to_plain(cfg) or {}).get("checkpoint")
    if given is None:
        return None
    path = Path(str(given)).expanduser()
    if (path / "final_theta").is_dir():
        path = path / "final_theta"
    if not path.is_dir():
        raise UserError(f"{node}.checkpoint={given!r} does not exist: give a meta-train run directory "
                        f"or its final_theta/ directory.")
    return path


def load_theta(lopt: Any, path: Path, node: str = "lopt") -> Any:
    """Meta-parameters saved at `path` (named by `<node>.checkpoint`), which must match the
    architecture of `lopt`."""
    try:
        return checkpoint.load_tree(path, lopt.init_theta(jax.random.PRNGKey(0)))
    except UserError as err:
        raise UserError(f"{node}.checkpoint does not fit the configured learned optimizer "
                        f"({type(lopt).__name__}): {err}") from None
