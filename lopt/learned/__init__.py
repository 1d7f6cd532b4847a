"""Learned optimizer registry: the `lopt/` config group names an architecture built here.

Trained meta-parameters are named apart from the architecture (`theta=<meta-train run>` in
meta-train and evaluate, `outer_opt.theta` for a learned outer optimizer) and loaded at run time.
"""
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from lopt import checkpoint
from lopt.config import Registry
from lopt.errors import UserError
from lopt.learned.fc_lopt import FCLOpt
from lopt.learned.hypernet import Hypernet
from lopt.learned.learnable_adam import LearnableAdam
from lopt.learned.nn_adam import NNAdam
from lopt.learned.rnn_mlp_lopt import RNNMLPLOpt
from lopt.learned.small_fc_lopt import SmallFCLOpt

REGISTRY = Registry("learned optimizer", {
    "small_fc_lopt": SmallFCLOpt,
    "fc_lopt": FCLOpt,
    "learnable_adam": LearnableAdam,
    "nn_adam": NNAdam,
    "rnn_mlp_lopt": RNNMLPLOpt,
    "hypernet": Hypernet,
})

__all__ = ["REGISTRY", "FCLOpt", "Hypernet", "LearnableAdam", "NNAdam", "RNNMLPLOpt", "SmallFCLOpt", "build",
           "load_theta", "theta_path"]


def build(cfg: Mapping[str, Any], node: str = "lopt") -> Any:
    """The learned optimizer named by the `lopt`-style config node at path `node`."""
    return REGISTRY.build(cfg, node)


def theta_path(given: str | None, key: str = "theta") -> Path | None:
    """The final_theta directory that config key `key` names (a meta-train run directory or its
    final_theta/), checked to exist; None if unset. Nothing is read."""
    if given is None:
        return None
    path = Path(str(given)).expanduser()
    if (path / "final_theta").is_dir():
        path = path / "final_theta"
    if not path.is_dir():
        raise UserError(f"{key}={given!r} does not exist: give a meta-train run directory or its final_theta/ "
                        f"directory.")
    return path


def load_theta(lopt: Any, path: Path, key: str = "theta") -> Any:
    """Meta-parameters saved at `path` (named by config key `key`), which must match the
    architecture of `lopt`."""
    try:
        return checkpoint.load_tree(path, lopt.init_theta(jax.random.PRNGKey(0)))
    except UserError as err:
        raise UserError(f"{key} does not fit the configured learned optimizer ({type(lopt).__name__}): {err}") from None
