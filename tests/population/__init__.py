"""Helpers of the population tests."""
from pathlib import Path
from typing import Any

from lopt.commands import meta_train, population
from lopt.io.checkpoint import Checkpointer
from tests.conftest import compose


def final_state(run_dir: Path, *overrides: str) -> Any:
    """The latest checkpointed PopulationState of the population run in `run_dir`, composed with
    meta-train's `overrides` (for its layout)."""
    c = meta_train.build(compose("meta_train", *overrides))
    like = population.initial_state(population.program(c), c.population, c.settings.seed)
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        return ckpt.restore(ckpt.latest_step(), like)
    finally:
        ckpt.close()
