"""Image autoencoder tasks: an MLP reconstructs its flattened input, mean squared error."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.data import DATASETS
from lopt.tasks.base import Task, scaled_init
from lopt.tasks.models import MLP


@dataclass(frozen=True)
class AutoencoderConfig:
    """An MLP autoencoder (`kind: autoencoder`): ReLU hidden layers, a linear reconstruction of the
    flattened image, loss = mean over pixels of the squared error (labels are ignored).

    `loss_clip` is absolute. Its default, 1.0, bounds the error of the all-zero reconstruction
    (mean x^2 <= 1 for images in [0, 1]): an inner problem doing worse than outputting nothing is
    clipped, as a classifier worse than 1.5x the uniform prediction is.
    """

    name: str
    dataset: str
    image_size: int
    batch_size: int = 128
    hidden: tuple[int, ...] = (128, 32, 128)
    loss_clip: float = 1.0
    init_scale: float = 1.0  # every initial weight multiplied by this (tasks.base.scaled_init)

    def __post_init__(self):
        check(self.dataset in DATASETS, "dataset", self.dataset, f"one of {sorted(DATASETS)}")
        check(self.image_size > 0, "image_size", self.image_size, "a positive integer")
        check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        check(len(self.hidden) > 0 and all(w > 0 for w in self.hidden), "hidden", self.hidden,
              "a non-empty list of positive integers")
        check(self.loss_clip > 0, "loss_clip", self.loss_clip, "positive")
        check(self.init_scale > 0, "init_scale", self.init_scale, "positive")

    @property
    def example_size(self) -> int:
        """The size data.load gives the examples: the image side."""
        return self.image_size

    def build(self) -> Task:
        shape = (self.image_size, self.image_size, DATASETS[self.dataset].shape[2])
        model = MLP(self.hidden, shape[0] * shape[1] * shape[2])

        def init(key: jax.Array):
            return model.init(key, jnp.zeros((1, *shape), jnp.float32))["params"]

        def loss(params, batch):
            x, _ = batch
            return jnp.mean((model.apply({"params": params}, x) - x.reshape(x.shape[0], -1)) ** 2)

        return Task(self.name, scaled_init(init, self.init_scale), loss, self.batch_size, self.loss_clip)
