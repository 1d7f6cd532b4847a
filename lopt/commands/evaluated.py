"""What `lopt evaluate` evaluates, in either of its modes (one task's curves, or a suite's scores):
its top-level settings, and the optimizer being evaluated as one value: a hand-designed one with
its config, or a learned architecture with its theta. Each knows its name, its label and how to
make the optimizer that trains a task for a number of steps."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import jax

from lopt import learned
from lopt.base import LearnedOptimizer, Optimizer
from lopt.config import check
from lopt.evaluation.baselines import BaselineSettings
from lopt.evaluation.scores import check_smoothing
from lopt.figures import optimizer_label
from lopt.io import theta_files
from lopt.learned.export import as_optax
from lopt.optimizers import hand_designed
from lopt.training.curves import CurveSettings


@dataclass(frozen=True)
class Settings(CurveSettings):
    """Top-level evaluation settings: how the curves are recorded, the trained meta-parameters of a
    learned optimizer (`theta`), and the baseline to compare with."""

    theta: str | None = None  # a meta-train run (or its final_theta/) whose theta `lopt` is evaluated with
    compare_to: str | None = None  # best.json or sweep.json of a baseline-sweep on this task (suite: a suite.json)
    baselines: BaselineSettings = field(default_factory=BaselineSettings)  # suite mode: the tuned reference
    smoothing: float = 0.95  # suite mode: EMA decay of the training losses the scores compare
    tuned: str | None = None  # suite mode, grid | random: `optimizer` at each task's best stored configuration
    suite_tasks: tuple[str, ...] = ()  # suite mode: the suite's tasks to evaluate (empty: all)

    def __post_init__(self):
        super().__post_init__()
        check_smoothing(self.smoothing)
        check(self.tuned in (None, "grid", "random"), "tuned", self.tuned, "null, grid or random")


class Evaluated(Protocol):
    """The optimizer an evaluation trains."""

    @property
    def name(self) -> str: ...  # its config option (`adam`, `small_fc_lopt`)

    @property
    def label(self) -> str: ...  # in words, for tables, legends and titles (`adam lr=0.001`, `celo (meta-trained)`)

    @property
    def learned(self) -> bool: ...

    @property
    def checkpoint(self) -> Path | None: ...  # the theta directory of a learned optimizer (None: its init)

    def optimizer(self, num_steps: int, **hyperparameters: float) -> Optimizer:
        """The optimizer for a training of `num_steps` steps (a hand-designed one at
        `hyperparameters` where given, else at its configured ones)."""
        ...


@dataclass(frozen=True)
class HandDesignedEvaluated:
    """A hand-designed optimizer at its configured hyperparameters, or with `tuned` (a search) at
    each suite task's best stored configuration."""

    name: str
    config: hand_designed.HandDesigned
    tuned: str | None = None
    learned: ClassVar[bool] = False
    checkpoint: ClassVar[Path | None] = None

    @property
    def label(self) -> str:
        if self.tuned is not None:
            return f"{self.name} (tuned per task: {self.tuned} search)"
        return optimizer_label(self.name, False, {"lr": self.config.lr})

    def optimizer(self, num_steps: int, **hyperparameters: float) -> Optimizer:
        return self.config.build(num_steps, **hyperparameters)


@dataclass(frozen=True)
class LearnedEvaluated:
    """A learned optimizer with the theta in `checkpoint`, or (None) its initialization at `seed`;
    it trains through its optax export."""

    name: str
    architecture: LearnedOptimizer
    checkpoint: Path | None
    seed: int
    learned: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return optimizer_label(self.name, True, trained=self.checkpoint is not None)

    def optimizer(self, num_steps: int, **hyperparameters: float) -> Optimizer:
        if hyperparameters:
            raise TypeError(f"a learned optimizer takes no hyperparameters; got {sorted(hyperparameters)}")
        if self.checkpoint is None:
            theta = self.architecture.init_theta(jax.random.PRNGKey(self.seed))
        else:
            theta = learned.load_theta(self.architecture, self.checkpoint)
        return hand_designed.OptaxOptimizer(as_optax(self.architecture, theta, num_steps))


def build(cfg: Mapping[str, Any], s: Settings) -> HandDesignedEvaluated | LearnedEvaluated:
    """The evaluated optimizer of config `cfg`: learned when it has a `lopt` node or a `theta`
    (`theta=` alone: the architecture its run was meta-trained with), else its `optimizer`."""
    node, checkpoint = cfg.get("lopt"), theta_files.theta_path(s.theta)  # the run must exist
    if node is None and checkpoint is not None:
        node = theta_files.recorded_architecture(
            checkpoint, str(s.theta),
            f"give its architecture with lopt=<{'|'.join(learned.REGISTRY.names())}> (and its options)")
    if node is None:
        return HandDesignedEvaluated(str(cfg["optimizer"]["name"]), hand_designed.from_config(cfg["optimizer"]),
                                     s.tuned)
    architecture = learned.build(node)
    learned.check_architecture(architecture, s.theta)
    return LearnedEvaluated(str(node["name"]), architecture, checkpoint, s.seed)
