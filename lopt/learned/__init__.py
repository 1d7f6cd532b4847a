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
from lopt.learned.small_fc_lopt import SmallFCLOpt

REGISTRY = Registry("learned optimizer")
REGISTRY.register("small_fc_lopt")(SmallFCLOpt)

__all__ = ["REGISTRY", "SmallFCLOpt", "build", "checkpoint_path", "load_theta"]


def build(cfg: Mapping[str, Any]) -> Any:
    """The learned optimizer named by the `lopt` config node."""
    values = {k: v for k, v in (to_plain(cfg) or {}).items() if k != "checkpoint"}
    return REGISTRY.build(values, "lopt")


def checkpoint_path(cfg: Mapping[str, Any]) -> Path | None:
    """The final_theta directory that `lopt.checkpoint` names, checked to exist (None if unset)."""
    given = (to_plain(cfg) or {}).get("checkpoint")
    if given is None:
        return None
    path = Path(str(given)).expanduser()
    if (path / "final_theta").is_dir():
        path = path / "final_theta"
    if not path.is_dir():
        raise UserError(f"lopt.checkpoint={given!r} does not exist: give a meta-train run directory "
                        f"or its final_theta/ directory.")
    return path


def load_theta(lopt: Any, path: Path) -> Any:
    """Meta-parameters saved at `path`, which must match the architecture of `lopt`."""
    try:
        return checkpoint.load_tree(path, lopt.init_theta(jax.random.PRNGKey(0)))
    except UserError as err:
        raise UserError(f"lopt.checkpoint does not fit the configured learned optimizer "
                        f"({type(lopt).__name__}): {err}") from None
