"""Where a population's members live and advance: the interface the population loop drives
(`Engine`), the state it checkpoints, and the in-process backend (`LocalEngine`).

The loop (`lopt.commands.population`) holds the PBT side on the host (assignments, key, event
log); an engine holds the members' device states and each member's snapshot of its trainer's theta
(`trainers[i]`: the theta of member outer[i] that trains member i, refreshed every
`population.sync_every` outer iterations and when an exploit step reassigns member i)."""
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from lopt.base import Theta
from lopt.data import Dataset
from lopt.meta_trainer import MetaTrainState, OuterStep
from lopt.population.member import MemberProgram, member, replace_member


class PopulationState(NamedTuple):
    """Everything a population run checkpoints; it resumes exactly from it."""

    members: MetaTrainState  # stacked over members
    trainers: Theta  # member i's snapshot of its trainer's theta, stacked
    outer: jax.Array  # int32 [members]: o_i
    trunc_length: jax.Array  # int32 [members]
    key: jax.Array  # the PBT key: the next exploit step's draws come from it
    iteration: jax.Array  # outer iterations done


class Engine(Protocol):
    """A population's members: advanced together one outer iteration at a time."""

    def advance(self, outer: Sequence[int], trunc_length: Sequence[int], refresh: bool) -> OuterStep:
        """One outer iteration of every member (member i with length trunc_length[i], trained by
        its snapshot, which `refresh` first replaces by member outer[i]'s current theta); the
        reports are stacked over members."""
        ...

    def thetas(self, indices: Sequence[int]) -> list[Theta]:
        """Host copies of the members' current thetas."""
        ...

    def restart(self, loser: int, winner: int, outer: Sequence[int]) -> None:
        """Member `loser` takes `winner`'s theta; its states restart for its trainer outer[loser]
        (the assignments after the exploit step), whose current theta becomes its snapshot."""
        ...

    def state(self) -> tuple[MetaTrainState, Theta]:
        """The members' states and snapshots, stacked (for a checkpoint)."""
        ...

    def close(self) -> None: ...


def groups(trunc_length: Sequence[int]) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """The members that share a truncation length, per length (ascending): each group is one
    vectorized unroll."""
    lengths = sorted(set(int(n) for n in trunc_length))
    return tuple((n, tuple(i for i, m in enumerate(trunc_length) if m == n)) for n in lengths)


def _advance_group(program: MemberProgram, length: int, members: MetaTrainState, trainers: Theta, rows: jax.Array,
                   data: tuple[Dataset | None, ...]) -> tuple[MetaTrainState, OuterStep]:
    """The outer iteration of the members `rows`, which share truncation `length`: one vectorized
    unroll, vmapped over them."""
    new, report = jax.vmap(partial(program.step, length), in_axes=(0, 0, None))(
        member(members, rows), member(trainers, rows), data)
    return replace_member(members, rows, new), report


def _gather_reports(parts: Sequence[tuple[tuple[int, ...], OuterStep]]) -> OuterStep:
    """The groups' reports (`parts`: each group's members and its report) on the host, stacked over
    the members in their order."""
    order = np.argsort(np.concatenate([idx for idx, _ in parts]))
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs)[order],
                                  *jax.device_get([report for _, report in parts]))


def _restart(program: MemberProgram, members: MetaTrainState, trainers: Theta, outer: jax.Array, loser: jax.Array,
             winner: jax.Array) -> tuple[MetaTrainState, Theta]:
    trainer = member(members.theta, outer[loser])
    state = program.restart(member(members, loser), member(members.theta, winner), trainer)
    return replace_member(members, loser, state), replace_member(trainers, loser, trainer)


class LocalEngine:
    """All members in this process, on its devices. Each outer iteration runs one program per
    truncation length, its members vmapped (a program for all lengths at once ran slower on XLA:CPU
    than separate ones), compiled once per length and number of members and reused whenever they
    come back; the members' state is donated."""

    def __init__(self, program: MemberProgram, data: tuple[Dataset | None, ...], members: MetaTrainState,
                 trainers: Theta):
        self.program, self.data = program, data
        self.members, self.trainers = members, trainers
        self._refresh = jax.jit(member)
        self._advance = jax.jit(partial(_advance_group, program), static_argnums=0, donate_argnums=1)
        self._restart = jax.jit(partial(_restart, program), donate_argnums=(0, 1))

    def advance(self, outer: Sequence[int], trunc_length: Sequence[int], refresh: bool) -> OuterStep:
        if refresh:  # every snapshot becomes its trainer's current theta, before any member moves
            self.trainers = self._refresh(self.members.theta, jnp.asarray(outer, jnp.int32))
        parts = []
        for length, idx in groups(trunc_length):  # dispatched back to back; read once all are queued
            self.members, report = self._advance(length, self.members, self.trainers, jnp.asarray(idx, jnp.int32),
                                                 self.data)
            parts.append((idx, report))
        return _gather_reports(parts)

    def thetas(self, indices: Sequence[int]) -> list[Theta]:
        return [jax.device_get(member(self.members.theta, i)) for i in indices]

    def restart(self, loser: int, winner: int, outer: Sequence[int]) -> None:
        self.members, self.trainers = self._restart(self.members, self.trainers, jnp.asarray(outer, jnp.int32),
                                                    jnp.asarray(loser), jnp.asarray(winner))

    def state(self) -> tuple[MetaTrainState, Theta]:
        return self.members, self.trainers

    def close(self) -> None:
        pass
