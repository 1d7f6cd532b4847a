"""The `data` config node that every command has: where datasets come from."""
from dataclasses import dataclass

from lopt.config import check
from lopt.data import SOURCES, Dataset, load


@dataclass(frozen=True)
class DataSettings:
    """The `data` config node."""

    source: str = "real"
    dir: str | None = None
    download: bool = True
    synthetic_examples: int = 1024

    def __post_init__(self):
        check(self.source in SOURCES, "source", self.source, f"one of {list(SOURCES)}")
        check(self.synthetic_examples > 0, "synthetic_examples", self.synthetic_examples, "a positive integer")

    def load(self, dataset: str, size: int, seed: int) -> Dataset:
        """Dataset `dataset` from this node's source, as device arrays (`lopt.data.load`: `size` is
        the image side, the sequence length or unused; `seed` picks synthetic data)."""
        return load(dataset, self.source, size, self.dir, self.download, self.synthetic_examples, seed)
