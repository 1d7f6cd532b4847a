"""Meta-gradient estimators over truncated unrolls; the `estimator/` config group names one."""
from typing import Any, Mapping

from lopt.config import Registry
from lopt.estimators.pes import PES

REGISTRY = Registry("gradient estimator")
REGISTRY.register("pes")(PES)


def build(cfg: Mapping[str, Any]) -> Any:
    """The estimator named by the `estimator` config node."""
    return REGISTRY.build(cfg, "estimator")
