"""Meta-gradient estimators over truncated unrolls; the `estimator/` config group names one."""
from typing import Any, Mapping

from lopt.config import Registry
from lopt.estimators.es import ES
from lopt.estimators.merged import Merged
from lopt.estimators.pes import PES
from lopt.estimators.tbptt import TBPTT

REGISTRY = Registry("gradient estimator")
REGISTRY.register("pes")(PES)
REGISTRY.register("es")(ES)
REGISTRY.register("tbptt")(TBPTT)
REGISTRY.register("merged")(Merged)


def build(cfg: Mapping[str, Any]) -> Any:
    """The estimator named by the `estimator` config node."""
    return REGISTRY.build(cfg, "estimator")
