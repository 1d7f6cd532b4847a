"""Truncation schedules: how many steps each inner problem trains before it is reset.

Every schedule has `sample(key, outer_iteration)` (traceable: it runs inside the compiled outer
step whenever a problem is (re)started) and static `min_length`/`max_length` bounds on what it
samples.
"""
from collections.abc import Mapping
from typing import Any

from lopt.config import Registry
from lopt.schedules.curricula import LinearSchedule, LogUniformSchedule
from lopt.schedules.fixed import ENDING, NEVER, ChoiceSchedule, ConstantSchedule, NeverEndingSchedule, require_ending

REGISTRY = Registry("truncation schedule", {
    "constant": ConstantSchedule,
    "linear": LinearSchedule,
    "log_uniform": LogUniformSchedule,
    "choice": ChoiceSchedule,
    "never_ending": NeverEndingSchedule,
})

__all__ = ["ENDING", "NEVER", "REGISTRY", "ChoiceSchedule", "ConstantSchedule", "LinearSchedule",
           "LogUniformSchedule", "NeverEndingSchedule", "build", "require_ending"]


def build(cfg: Mapping[str, Any]) -> Any:
    """The schedule named by the `schedule` config node."""
    return REGISTRY.build(cfg, "schedule")
