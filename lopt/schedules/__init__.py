"""Truncation schedules: how many steps each inner problem trains before it is reset.

Every schedule has `sample(key, outer_iteration)` (traceable: it runs inside the compiled outer
step whenever a problem is (re)started) and static `min_length`/`max_length` bounds on what it
samples.
"""
from typing import Any, Mapping

from lopt.config import Registry
from lopt.schedules.curricula import LinearSchedule, LogUniformSchedule
from lopt.schedules.fixed import (ENDING, NEVER, ChoiceSchedule, ConstantSchedule, NeverEndingSchedule,
                                  require_ending)

REGISTRY = Registry("truncation schedule")
REGISTRY.register("constant")(ConstantSchedule)
REGISTRY.register("linear")(LinearSchedule)
REGISTRY.register("log_uniform")(LogUniformSchedule)
REGISTRY.register("choice")(ChoiceSchedule)
REGISTRY.register("never_ending")(NeverEndingSchedule)

__all__ = ["ENDING", "NEVER", "REGISTRY", "ChoiceSchedule", "ConstantSchedule", "LinearSchedule",
           "LogUniformSchedule", "NeverEndingSchedule", "build", "require_ending"]


def build(cfg: Mapping[str, Any]) -> Any:
    """The schedule named by the `schedule` config node."""
    return REGISTRY.build(cfg, "schedule")
