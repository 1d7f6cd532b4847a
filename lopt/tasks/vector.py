"""Tasks on fixed-length examples (lopt.data.vector): classification or regression of tabular rows
[F] with an MLP, or of 1-D signals [L, C] with an MLP or a 1-D convnet."""
import math
from dataclasses import dataclass
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lopt.config import check
from lopt.data import VECTOR_DATASETS
from lopt.tasks.base import Task, scaled_init
from lopt.tasks.models import ACTIVATIONS, KERNEL_INITS, MLP, ConvNet, NetworkConfig

MODELS = ("mlp", "conv1d")
SIGNALS = sorted(name for name, spec in VECTOR_DATASETS.items() if len(spec.shape) == 2)  # [L, C] examples


@dataclass(frozen=True)
class VectorConfig(NetworkConfig):
    """`kind: vector`: an MLP (`hidden` layers) or a 1-D convnet (`kernel_size`-wide 'SAME'
    convolutions of `channels` with `strides`, global mean pool, linear head; signal datasets only)
    on a vector dataset.

    A classification dataset is scored by softmax cross-entropy (eval metrics loss and accuracy),
    its meta-loss clipped at `loss_clip_factor * ln(num_classes)` as image classification clips. A
    regression dataset (num_classes 0: diabetes) is scored by the mean squared error of one linear
    output, clipped at `loss_clip_factor * 1.0`: its target is standardized, so predicting 0 scores
    about 1.
    """

    name: str
    dataset: str
    batch_size: int = 32
    model: str = "mlp"
    kernel_size: int = 3

    def __post_init__(self):
        check(self.dataset in VECTOR_DATASETS, "dataset", self.dataset, f"one of {sorted(VECTOR_DATASETS)}")
        check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        check(self.model in MODELS, "model", self.model, f"one of {list(MODELS)}")
        check(self.model != "conv1d" or self.dataset in SIGNALS, "dataset", self.dataset,
              f"a dataset of 1-D signals for model conv1d: one of {SIGNALS}")
        check(self.model != "mlp" or len(self.hidden) > 0, "hidden", self.hidden, "a non-empty list for an mlp model")
        check(self.model != "conv1d" or len(self.channels) > 0, "channels", self.channels,
              "a non-empty list for a conv1d model")
        check(self.kernel_size > 0, "kernel_size", self.kernel_size, "a positive integer")
        super().__post_init__()

    @property
    def example_size(self) -> int:
        """The size data.load is given: the example's length (features, or signal positions), which
        it does not use, since a vector dataset has one example shape."""
        return VECTOR_DATASETS[self.dataset].shape[0]

    def build(self) -> Task:
        spec = VECTOR_DATASETS[self.dataset]
        init_fn, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        outputs = spec.num_classes or 1  # a regression has one output
        model: nn.Module
        if self.model == "mlp":
            model = MLP(self.hidden, outputs, init_fn, act)
        else:
            model = ConvNet(self.channels, self.strides, outputs, self.kernel_size, self.conv_impl, init_fn, act)
        example = jnp.zeros((1, *spec.shape), jnp.float32)

        def init(key: jax.Array):
            return model.init(key, example)["params"]

        def eval_metrics(params, batch):
            x, y = batch
            out = cast(jax.Array, model.apply({"params": params}, x))
            if not spec.num_classes:
                return {"loss": jnp.mean((out[:, 0] - y) ** 2)}
            return {"loss": optax.softmax_cross_entropy_with_integer_labels(out, y).mean(),
                    "accuracy": jnp.mean(jnp.argmax(out, axis=-1) == y)}

        def loss(params, batch):
            return eval_metrics(params, batch)["loss"]

        clip = self.loss_clip_factor * (math.log(spec.num_classes) if spec.num_classes else 1.0)
        return Task(self.name, scaled_init(init, self.init_scale), loss, self.batch_size, clip, eval_metrics)
