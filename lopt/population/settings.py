"""The `population` node of `lopt meta-train`: a population of learned optimizers trained by each
other (or, as the control, each by a hand-designed outer optimizer), orchestrated by PBT."""
import importlib.util
from dataclasses import dataclass, field

from lopt.config import check
from lopt.evaluation import baseline_free
from lopt.evaluation.periodic import HIGHER_IS_BETTER, SCORES
from lopt.optimizers import outer as outer_lib
from lopt.population import pbt

BACKENDS = ("local", "ray")
SELF = "self"  # population.outer: every member is trained by another member's learned optimizer
HAND_DESIGNED = tuple(name for name in outer_lib.REGISTRY.names() if name != "lopt")


@dataclass(frozen=True)
class RaySettings:
    """Where `population.backend=ray` runs its member actors: `address` is passed to `ray.init`
    (null: a new local Ray instance; `auto`: the cluster this machine belongs to; or
    `ray://host:port`), each actor reserving `num_cpus` CPUs."""

    address: str | None = None
    num_cpus: float = 1.0

    def __post_init__(self):
        check(self.num_cpus > 0, "num_cpus", self.num_cpus, "a positive number of CPUs per member actor")


@dataclass(frozen=True)
class PopulationSettings:
    """`size` members of the run's learned optimizer, randomly initialized from `seed`. With
    `outer=self`, member i's theta is updated by the learned optimizer with the theta of member
    o_i; `outer=<name>` (e.g. adam_clip) trains every member with that hand-designed outer
    optimizer instead (the run's `outer_opt` node when it is that optimizer, else its defaults).
    Every `exploit_every` outer iterations two members are scored on the evaluation tasks (the
    mean over them of the per-task `score`) and the loser takes the winner's theta and outer
    optimizer (`lopt.population.pbt`, which breaks ties). The default score, log_relative_loss
    (`lopt.evaluation.baseline_free`), needs no baseline, so no hand-designed optimizer is trained
    or read anywhere in the run; the Adam-relative ones (normalized_loss, ...) read tuned Adam
    baselines (`eval.baselines`). A member's snapshot of its trainer's theta is refreshed
    every `sync_every` outer iterations (1: the current theta every iteration)."""

    size: int = 4
    exploit_every: int = 50
    trunc_lengths: tuple[int, ...] = (10, 15, 20, 40)  # the paper's 200, 300, 400, 800, divided by 20
    p_reassign: float = 0.5
    p_resample_length: float = 0.1
    outer: str = SELF
    score: str = baseline_free.LOG_RELATIVE_LOSS
    sync_every: int = 1
    max_update: float | None = 0.003  # the control adam_clip's learning rate
    backend: str = "local"
    ray: RaySettings = field(default_factory=RaySettings)

    def __post_init__(self):
        pbt.check_settings(self.size, self.trunc_lengths, self.p_reassign, self.p_resample_length)
        check(self.exploit_every > 0, "exploit_every", self.exploit_every,
              "a positive integer (outer iterations between exploit steps)")
        check(self.sync_every > 0, "sync_every", self.sync_every,
              "a positive integer (outer iterations between refreshes of the trainers' thetas)")
        check(self.max_update is None or self.max_update > 0, "max_update", self.max_update,
              "a positive number (the largest value of a learned outer update) or null (no clip)")
        check(self.outer in (SELF, *HAND_DESIGNED), "outer", self.outer,
              f"one of {', '.join((SELF, *HAND_DESIGNED))}")
        check(self.score in SCORES, "score", self.score, f"one of {', '.join(SCORES)}")
        check(self.backend in BACKENDS, "backend", self.backend, f"one of {', '.join(BACKENDS)}")
        check(self.backend != "ray" or importlib.util.find_spec("ray") is not None, "backend", self.backend,
              "local, or ray with Ray installed (pip install 'lopt[ray]'): the ray package is not installed")

    @property
    def higher_is_better(self) -> bool:
        return self.score.endswith(HIGHER_IS_BETTER)

    @property
    def needs_baselines(self) -> bool:
        """Whether the score compares with tuned baselines (then the evaluation loads or sweeps them)."""
        return self.score not in baseline_free.SCORES
