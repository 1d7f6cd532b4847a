"""Task registry: the `task/` config group names an image-classification task built here."""
import math
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from lopt.config import check, from_config
from lopt.data import DATASETS
from lopt.tasks.base import Task, num_params
from lopt.tasks.conv import IMPLS
from lopt.tasks.models import MLP, ConvNet

__all__ = ["Task", "TaskConfig", "build", "num_params"]

MODELS = ("mlp", "conv")


@dataclass(frozen=True)
class TaskConfig:
    """An image-classification task: dataset, resolution, model and batch size."""

    name: str
    dataset: str
    image_size: int
    batch_size: int = 128
    model: str = "mlp"
    hidden: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    conv_impl: str = "auto"
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        check(self.dataset in DATASETS, "dataset", self.dataset, f"one of {sorted(DATASETS)}")
        check(self.image_size > 0, "image_size", self.image_size, "a positive integer")
        check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        check(self.model in MODELS, "model", self.model, f"one of {list(MODELS)}")
        check(self.conv_impl in IMPLS, "conv_impl", self.conv_impl, f"one of {list(IMPLS)}")
        check(all(w > 0 for w in self.hidden + self.channels + self.strides), "hidden/channels/strides",
              self.hidden + self.channels + self.strides, "positive integers")
        check(len(self.channels) == len(self.strides), "strides", self.strides,
              "a list as long as channels")
        check(self.model != "conv" or len(self.channels) > 0, "channels", self.channels,
              "a non-empty list for a conv model")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")


def build(cfg: TaskConfig | Mapping[str, Any]) -> Task:
    """The Task described by `cfg` (a TaskConfig or the `task` config node)."""
    if not isinstance(cfg, TaskConfig):
        cfg = from_config(TaskConfig, cfg, "task")
    spec = DATASETS[cfg.dataset]
    if cfg.model == "mlp":
        model = MLP(cfg.hidden, spec.num_classes)
    else:
        model = ConvNet(cfg.channels, cfg.strides, spec.num_classes, conv_impl=cfg.conv_impl)
    example = jnp.zeros((1, cfg.image_size, cfg.image_size, spec.shape[2]), jnp.float32)

    def init(key: jax.Array):
        return model.init(key, example)["params"]

    def eval_metrics(params, batch):
        x, y = batch
        logits = model.apply({"params": params}, x)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
                "accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == y)}

    def loss(params, batch):
        return eval_metrics(params, batch)["loss"]

    clip = cfg.loss_clip_factor * math.log(spec.num_classes)
    return Task(cfg.name, init, loss, cfg.batch_size, clip, eval_metrics)
