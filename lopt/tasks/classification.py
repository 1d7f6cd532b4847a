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
from lopt.tasks.base import Task, scaled_init
from lopt.tasks.models import ACTIVATIONS, KERNEL_INITS, MLP, ConvNet, NetworkConfig

MODELS = ("mlp", "conv")
LABELED = sorted(name for name, spec in DATASETS.items() if spec.num_classes > 0)  # image datasets with classes


@dataclass(frozen=True)
class ClassificationConfig(NetworkConfig):
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

    def __post_init__(self):
        check(self.dataset in LABELED, "dataset", self.dataset, f"one of {LABELED}")
        check(self.image_size > 0, "image_size", self.image_size, "a positive integer")
        check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        check(self.model in MODELS, "model", self.model, f"one of {list(MODELS)}")
        super().__post_init__()
        check(self.model != "conv" or len(self.channels) > 0, "channels", self.channels,
              "a non-empty list for a conv model")

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
        return Task(self.name, scaled_init(init, self.init_scale), loss, self.batch_size, clip, eval_metrics)
