"""`population.backend=ray`: one Ray actor per member of a population (`RayEngine`).

Each actor holds its member's `MetaTrainState`, its snapshot of its trainer's theta and the data,
and runs the member's outer iterations (`MemberProgram.step`, compiled per truncation length) and
exploit restarts in its own process, where the local backend vmaps the members that share a
truncation length in one program. The driver holds only the actors' handles: thetas travel between
actors as Ray objects (a trainer's theta is passed to its trainees by reference, read before any
member steps), and checkpoints gather and stack the members' states, in the local backend's layout,
so a run checkpointed on one backend resumes on the other.
"""
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import ray

from lopt.base import Theta
from lopt.data import Dataset
from lopt.meta_trainer import MetaTrainState, OuterStep
from lopt.population.member import MemberProgram, member

if TYPE_CHECKING:  # the actors import this module: not the settings' (scoring's scipy, ...)
    from lopt.population.settings import RaySettings

ENV_PREFIXES = ("XLA_", "JAX_", "LOPT_")  # the driver's environment the actors' JAX must see (XLA_FLAGS, ...)
JAX_CONFIG = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")  # set in-process by lopt
_local_instance: tuple[str, dict[str, str]] | None = None  # the node of the local Ray instance this process started,
# and the `worker_env` its workers inherited


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that configure JAX and XLA: the actors run with the driver's
    (a Ray instance started elsewhere, or before they were set, would not pass them on)."""
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIXES)}


def jax_config() -> dict[str, Any]:
    """This process's JAX settings that lopt sets in code rather than in the environment."""
    return {name: getattr(jax.config, name) for name in JAX_CONFIG}


def local_cpus(size: int, num_cpus: float, cores: int) -> int:
    """Logical CPUs of a local Ray instance: all cores, and at least what `size` actors of
    `num_cpus` each reserve (so a population larger than the machine does not wait forever)."""
    return max(cores, math.ceil(size * num_cpus))


def host(tree: Any) -> Any:
    """`tree` as numpy arrays the caller owns (copies: a device buffer may be donated next)."""
    return jax.tree_util.tree_map(np.array, jax.device_get(tree))


def stack(trees: Sequence[Any]) -> Any:
    """Trees of one member each, stacked over members (the local backend's layout)."""
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


class Member:
    """One member in its own process (a Ray actor): its state, its snapshot of its trainer's theta
    (`trainer`), the data, and its compiled outer iteration per truncation length and restart (the
    state is donated)."""

    def __init__(self, program: MemberProgram, data: tuple[Dataset | None, ...], state: MetaTrainState,
                 trainer: Theta, config: Mapping[str, Any]):
        for name, value in config.items():
            jax.config.update(name, value)
        self.program = program
        self.data, self.state, self.trainer = jax.device_put((data, state, trainer))
        self._steps: dict[int, Any] = {}
        self._restart = jax.jit(program.restart, donate_argnums=0)

    def theta(self) -> Theta:
        """A host copy of the member's current theta."""
        return host(self.state.theta)

    def step(self, trunc_length: int, trainer: Theta | None) -> OuterStep:
        """One outer iteration, trained by `trainer` (which becomes the snapshot) or, if None, by
        the snapshot; returns the report on the host."""
        if trainer is not None:
            self.trainer = jax.device_put(trainer)
        if trunc_length not in self._steps:
            self._steps[trunc_length] = jax.jit(partial(self.program.step, trunc_length), donate_argnums=0)
        self.state, report = self._steps[trunc_length](self.state, self.trainer, self.data)
        return host(report)

    def restart(self, theta: Theta, trainer: Theta) -> None:
        """The loser of an exploit step: it takes `theta`; `trainer` becomes its snapshot."""
        self.trainer = jax.device_put(trainer)
        self.state = self._restart(self.state, jax.device_put(theta), self.trainer)

    def snapshot(self) -> tuple[MetaTrainState, Theta]:
        """Host copies of the state and the trainer snapshot (for a checkpoint)."""
        return host((self.state, self.trainer))


def connect(settings: "RaySettings", size: int) -> bool:
    """Join Ray at `settings.address`, or start a local instance with room for `size` actors,
    unless this process is already connected; whether this call started it."""
    global _local_instance
    if ray.is_initialized():
        return False
    cpus = None if settings.address else local_cpus(size, settings.num_cpus, os.cpu_count() or 1)
    with warnings.catch_warnings():  # JAX's warning about os.fork: Ray forks to exec its own processes
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        ray.init(address=settings.address, num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    if settings.address is None:
        _local_instance = ray.get_runtime_context().get_node_id(), worker_env(os.environ)
    return True


def actor_options(num_cpus: float) -> dict[str, Any]:
    """Ray options of a member actor: `num_cpus`, and the driver's JAX and XLA environment unless
    its workers inherit it (a local instance this process started; its prestarted workers serve)."""
    env = worker_env(os.environ)
    inherited = _local_instance == (ray.get_runtime_context().get_node_id(), env)
    return {"num_cpus": num_cpus, **({} if inherited else {"runtime_env": {"env_vars": env}})}


class RayEngine:
    """The members as Ray actors (one each, reserving `settings.num_cpus` CPUs), advanced in
    parallel; the driver holds their handles only."""

    def __init__(self, program: MemberProgram, data: tuple[Dataset | None, ...], members: MetaTrainState,
                 trainers: Theta, settings: "RaySettings"):
        size = len(jax.tree_util.tree_leaves(members)[0])
        self._started = connect(settings, size)
        members, trainers = jax.device_get((members, trainers))
        actor = ray.remote(Member).options(**actor_options(settings.num_cpus))
        shared = ray.put(program), ray.put(jax.device_get(data))  # stored once, read by every actor
        config = jax_config()
        self._actors: list[Any] = [
            actor.remote(*shared, host(member(members, i)), host(member(trainers, i)), config)
            for i in range(size)]

    def advance(self, outer: Sequence[int], trunc_length: Sequence[int], refresh: bool) -> OuterStep:
        # the trainers' thetas before this iteration: asked for before any member steps (an actor
        # runs its calls in order; Ray hands a trainee the theta its reference resolves to)
        thetas = {o: self._actors[o].theta.remote() for o in sorted(set(outer))} if refresh else {}
        reports = [a.step.remote(int(n), thetas.get(o)) for a, o, n in zip(self._actors, outer, trunc_length)]
        return stack(ray.get(reports))

    def thetas(self, indices: Sequence[int]) -> list[Theta]:
        return ray.get([self._actors[i].theta.remote() for i in indices])

    def restart(self, loser: int, winner: int, outer: Sequence[int]) -> None:
        theta, trainer = (self._actors[i].theta.remote() for i in (winner, outer[loser]))
        ray.get(self._actors[loser].restart.remote(theta, trainer))

    def state(self) -> tuple[MetaTrainState, Theta]:
        members, trainers = zip(*ray.get([a.snapshot.remote() for a in self._actors]))
        return stack(members), stack(trainers)

    def close(self) -> None:
        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False
