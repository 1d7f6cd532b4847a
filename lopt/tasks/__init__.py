"""Task registry: a `task/` config node's `kind` picks its config class, which builds the Task."""
from collections.abc import Mapping
from typing import Any

from lopt.config import Registry
from lopt.data import Dataset
from lopt.data.settings import DataSettings
from lopt.tasks import family
from lopt.tasks.analytic import QuadraticConfig, TwoMinimaConfig
from lopt.tasks.autoencoder import AutoencoderConfig
from lopt.tasks.base import Task, num_params
from lopt.tasks.classification import ClassificationConfig
from lopt.tasks.language import LanguageModelConfig
from lopt.tasks.vector import VectorConfig

__all__ = ["KINDS", "Task", "TaskConfig", "build", "family", "load_data", "num_params", "parse"]

TaskConfig = (ClassificationConfig | AutoencoderConfig | QuadraticConfig | TwoMinimaConfig | LanguageModelConfig
              | VectorConfig)

# Every config class has `name`, `dataset` (None: no data to load; else with `example_size`, the
# image side or sequence length data.load cuts examples to, unused for a vector dataset) and
# `build() -> Task`.
KINDS = Registry("task kind", {
    "classification": ClassificationConfig,
    "autoencoder": AutoencoderConfig,
    "quadratic": QuadraticConfig,
    "two_minima": TwoMinimaConfig,
    "language_model": LanguageModelConfig,
    "vector": VectorConfig,
}, key="kind", default="classification")


def parse(node: Mapping[str, Any], path: str = "task") -> TaskConfig:
    """The validated config of the `task` node; `kind` defaults to classification."""
    return KINDS.build(node, path)


def build(cfg: TaskConfig | Mapping[str, Any]) -> Task:
    """The Task described by `cfg` (a parsed config or the `task` config node)."""
    return (parse(cfg) if isinstance(cfg, Mapping) else cfg).build()


def load_data(cfg: TaskConfig, data: DataSettings, seed: int) -> Dataset | None:
    """The dataset of task `cfg` from where the `data` node says, as device arrays; None for a task
    without data."""
    return None if cfg.dataset is None else data.load(cfg.dataset, cfg.example_size, seed)
