"""Meta-gradient estimators over truncated or full unrolls; the `estimator/` config group names one."""
from collections.abc import Mapping
from typing import Any

from lopt.config import Registry
from lopt.estimators.es import ES
from lopt.estimators.full_es import FullES
from lopt.estimators.merged import Merged
from lopt.estimators.pes import PES
from lopt.estimators.tbptt import TBPTT

REGISTRY = Registry("gradient estimator", {"pes": PES, "es": ES, "full_es": FullES, "tbptt": TBPTT, "merged": Merged})

__all__ = ["ES", "FullES", "Merged", "PES", "REGISTRY", "TBPTT", "build"]


def build(cfg: Mapping[str, Any]) -> Any:
    """The estimator named by the `estimator` config node."""
    return REGISTRY.build(cfg, "estimator")
