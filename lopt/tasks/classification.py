"""Image classification tasks: an MLP or a convnet on a dataset, softmax cross-entropy."""
import math
from dataclasses import dataclass
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lopt.config import check
from lopt.data import DATASETS
from lopt.tasks.base import Task
from lopt.tasks.conv import IMPLS
from lopt.tasks.models import ACTIVATIONS, KERNEL_INITS, MLP, ConvNet

MODELS = ("mlp", "conv")


@dataclass(frozen=True)
class ClassificationConfig:
    """An image-classification task (`kind: classification`): dataset, resolution, model, batch size.

    The meta-loss is clipped at `loss_clip_factor * ln(num_classes)`, a multiple of the loss of the
    uniform prediction (Metz et al. 2022, Practical tradeoffs between memory, compute, and performance
    in learned optimizers, App. D.1: mean training loss clipped at ln(10)).
    """

    name: str
    dataset: str
    image_size: int
    batch_size: int = 128
    model: str = "mlp"
    hidden: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    conv_impl: str = "auto"
    kernel_init: str = "lecun_normal"
    activation: str = "relu"
    loss_clip_factor: float = 1.5

    def __post_init__(self):
        check(self.dataset in DATASETS, "dataset", self.dataset, f"one of {sorted(DATASETS)}")
        check(self.image_size > 0, "image_size", self.image_size, "a positive integer")
        check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        check(self.model in MODELS, "model", self.model, f"one of {list(MODELS)}")
        check(self.conv_impl in IMPLS, "conv_impl", self.conv_impl, f"one of {list(IMPLS)}")
        check(self.kernel_init in KERNEL_INITS, "kernel_init", self.kernel_init, f"one of {list(KERNEL_INITS)}")
        check(self.activation in ACTIVATIONS, "activation", self.activation, f"one of {list(ACTIVATIONS)}")
        check(all(w > 0 for w in self.hidden + self.channels + self.strides), "hidden/channels/strides",
              self.hidden + self.channels + self.strides, "positive integers")
        check(len(self.channels) == len(self.strides), "strides", self.strides,
              "a list as long as channels")
        check(self.model != "conv" or len(self.channels) > 0, "channels", self.channels,
              "a non-empty list for a conv model")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")

    @property
    def example_size(self) -> int:
        """The size data.load gives the examples: the image side."""
        return self.image_size

    def build(self) -> Task:
        spec = DATASETS[self.dataset]
        init_fn, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        model: nn.Module
        if self.model == "mlp":
            model = MLP(self.hidden, spec.num_classes, init_fn, act)
        else:
            model = ConvNet(self.channels, self.strides, spec.num_classes, conv_impl=self.conv_impl,
                            kernel_init=init_fn, activation=act)
        example = jnp.zeros((1, self.image_size, self.image_size, spec.shape[2]), jnp.float32)

        def init(key: jax.Array):
            return model.init(key, example)["params"]

        def eval_metrics(params, batch):
            x, y = batch
            logits = cast(jax.Array, model.apply({"params": params}, x))
            return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
                    "accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == y)}

        def loss(params, batch):
            return eval_metrics(params, batch)["loss"]

        clip = self.loss_clip_factor * math.log(spec.num_classes)
        return Task(self.name, init, loss, self.batch_size, clip, eval_metrics)
