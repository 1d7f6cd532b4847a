"""Learned optimizer registry: the `lopt/` config group names an architecture built here."""
from typing import Any, Mapping

from lopt.config import Registry
from lopt.learned.small_fc_lopt import SmallFCLOpt

REGISTRY = Registry("learned optimizer")
REGISTRY.register("small_fc_lopt")(SmallFCLOpt)


def build(cfg: Mapping[str, Any]) -> Any:
    """The learned optimizer named by the `lopt` config node."""
    return REGISTRY.build(cfg, "lopt")
