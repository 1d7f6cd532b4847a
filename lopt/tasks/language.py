"""Byte-level language modeling: an LSTM predicts each next byte of a text window."""
import math
from dataclasses import dataclass
from typing import cast

import jax
import jax.numpy as jnp
import optax

from lopt.config import check
from lopt.data import TEXT_DATASETS
from lopt.data.text import PAD
from lopt.tasks.base import Task, scaled_init
from lopt.tasks.models import LSTMLanguageModel


@dataclass(frozen=True)
class LanguageModelConfig:
    """`kind: language_model` (Metz et al. 2022, Practical tradeoffs between memory, compute, and
    performance in learned optimizers, App. E.1 "LSTM language modeling"; learned_optimization's
    RNNLM_LM1BByte_Patch32_LSTM128_Embed64): `seq_len`-byte windows of a text dataset, a
    `embed_dim` embedding, an LSTM of `hidden` units and linear next-byte logits.

    The loss is the mean next-byte cross-entropy over the positions whose input is not padding (a
    sentence shorter than the window is padded with byte 0), as the reference masks them; the
    meta-loss is clipped at `loss_clip_factor * ln(vocab)`, a multiple of the uniform prediction's.
    """

    name: str
    dataset: str = "lm1b"
    seq_len: int = 32
    batch_size: int = 128
    embed_dim: int = 64
    hidden: int = 128
    loss_clip_factor: float = 1.5
    init_scale: float = 1.0  # every initial weight multiplied by this (tasks.base.scaled_init)

    def __post_init__(self):
        check(self.dataset in TEXT_DATASETS, "dataset", self.dataset, f"one of {sorted(TEXT_DATASETS)}")
        for key in ("seq_len", "batch_size", "embed_dim", "hidden"):
            check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        check(self.loss_clip_factor > 0, "loss_clip_factor", self.loss_clip_factor, "positive")
        check(self.init_scale > 0, "init_scale", self.init_scale, "positive")

    @property
    def example_size(self) -> int:
        """The size data.load gives the examples: the sequence length."""
        return self.seq_len

    def build(self) -> Task:
        vocab = TEXT_DATASETS[self.dataset].vocab_size
        model = LSTMLanguageModel(vocab, self.embed_dim, self.hidden)

        def init(key: jax.Array):
            return model.init(key, jnp.zeros((1, self.seq_len), jnp.uint8))["params"]

        def eval_metrics(params, batch):
            inputs, targets = batch
            logits = cast(jax.Array, model.apply({"params": params}, inputs))
            scored = (inputs != PAD).astype(jnp.float32)
            count = jnp.maximum(scored.sum(), 1.0)
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets.astype(jnp.int32))
            hits = jnp.argmax(logits, axis=-1) == targets
            return {"loss": jnp.sum(ce * scored) / count, "accuracy": jnp.sum(hits * scored) / count}

        def loss(params, batch):
            return eval_metrics(params, batch)["loss"]

        return Task(self.name, scaled_init(init, self.init_scale), loss, self.batch_size,
                    self.loss_clip_factor * math.log(vocab), eval_metrics)
