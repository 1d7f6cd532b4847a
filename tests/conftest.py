"""Shared test helpers: tiny configs composed from the shipped config tree."""
import os

os.environ.setdefault("WANDB_MODE", "disabled")

import pytest
from hydra import compose, initialize_config_module

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled",
        "num_tasks=2", "estimator.trunc_length=3", "schedule.length=7", "outer_iterations=3",
        "log_every=1", "checkpoint_every=2"]


def compose_meta_train(*overrides: str):
    with initialize_config_module(config_module="lopt_conf", version_base="1.3"):
        return compose("meta_train", overrides=list(overrides))


@pytest.fixture
def tiny_cfg():
    return compose_meta_train(*TINY)
