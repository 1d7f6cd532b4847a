"""Task registry: a `task/` config node's `kind` picks its config class, which builds the Task."""
from typing import Any, Mapping

from lopt.config import from_config, join, to_plain
from lopt.errors import unknown_choice
from lopt.tasks.analytic import QuadraticConfig, TwoMinimaConfig
from lopt.tasks.autoencoder import AutoencoderConfig
from lopt.tasks.base import Task, num_params
from lopt.tasks.classification import ClassificationConfig
from lopt.tasks.language import LanguageModelConfig
from lopt.tasks import family  # noqa: E402  (after the config classes it samples)

__all__ = ["KINDS", "Task", "TaskConfig", "build", "family", "num_params", "parse"]

TaskConfig = ClassificationConfig | AutoencoderConfig | QuadraticConfig | TwoMinimaConfig | LanguageModelConfig

# Every config class has `name`, `dataset` (None: no data to load; else with `example_size`, the
# image side or sequence length data.load cuts examples to) and `build() -> Task`.
KINDS: dict[str, type] = {
    "classification": ClassificationConfig,
    "autoencoder": AutoencoderConfig,
    "quadratic": QuadraticConfig,
    "two_minima": TwoMinimaConfig,
    "language_model": LanguageModelConfig,
}


def parse(node: Mapping[str, Any], path: str = "task") -> TaskConfig:
    """The validated config of the `task` node; `kind` defaults to classification."""
    values = dict(to_plain(node) or {})
    kind = values.pop("kind", "classification")
    if kind not in KINDS:
        raise unknown_choice(f"task kind ({join(path, 'kind')})", kind, sorted(KINDS))
    return from_config(KINDS[kind], values, path)


def build(cfg: TaskConfig | Mapping[str, Any]) -> Task:
    """The Task described by `cfg` (a parsed config or the `task` config node)."""
    if not isinstance(cfg, tuple(KINDS.values())):
        cfg = parse(cfg)
    return cfg.build()
