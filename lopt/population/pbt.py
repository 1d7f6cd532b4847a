"""The population-based-training bookkeeping of population self-training (Metz, Freeman,
Maheswaranathan, Sohl-Dickstein 2021, arXiv:2101.07367, after Jaderberg et al. 2017, Population
based training of neural networks, arXiv:1711.09846).

Each member i has an outer optimizer o_i: the member whose current theta, through the learned
optimizer, updates theta_i. At the start o_i is drawn uniformly among the other members (a member
is its own outer optimizer only in a population of one). Every exploit step two distinct members
are drawn; the one with the worse evaluation score (the loser; ties: `rank`) copies the winner's theta and the
winner's outer optimizer (the paper's "parameters as well as the learned optimizer being used to
train these parameters"; it keeps its own truncation length), and its estimator state restarts.
Then, with probability `p_reassign` (0.5), the loser's outer optimizer is drawn again among the
other members, and with probability `p_resample_length` (0.1) its truncation length is drawn again
from `trunc_lengths`. A copied outer
optimizer that would be the loser itself (the winner was trained by the loser) is always drawn
again, so no member of a population of two or more ever trains itself.

Everything random is a `Draws` made from one jax.random key (`draws`), so the step is a pure
function of the key and the population's assignments, checkable by hand (`exploit_explore`).
The device arrays (thetas, estimator states) are the caller's: `Exploit.loser` takes
`Exploit.winner`'s theta.
"""
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np

from lopt.config import check


class Assignments(NamedTuple):
    """Who trains whom, and at which truncation length: one entry per member."""

    outer: tuple[int, ...]  # o_i: the member whose theta is member i's outer optimizer
    trunc_length: tuple[int, ...]  # member i's truncation length


class Draws(NamedTuple):
    """The random numbers of one exploit step."""

    pair: tuple[int, int]  # the two members compared (distinct unless the population has one)
    reassign: float  # uniform in [0, 1): below p_reassign, the loser's outer optimizer is drawn again
    other: float  # uniform in [0, 1): picks the new outer optimizer among the loser's others
    resample: float  # uniform in [0, 1): below p_resample_length, the loser's length is drawn again
    length: float  # uniform in [0, 1): picks the new length in trunc_lengths


class Exploit(NamedTuple):
    """What one exploit step did (a row of the population's event log)."""

    winner: int
    loser: int
    outer: int  # the loser's outer optimizer after the step
    trunc_length: int  # the loser's truncation length after the step
    reassigned: bool  # its outer optimizer was drawn again
    resampled: bool  # its truncation length was drawn again


def check_settings(size: int, trunc_lengths: Sequence[int], p_reassign: float, p_resample_length: float) -> None:
    """Refuse a population that cannot run (raised as the config error naming the value)."""
    check(size > 0, "size", size, "a positive integer (members of the population)")
    check(len(trunc_lengths) > 0 and all(int(n) > 0 for n in trunc_lengths), "trunc_lengths", list(trunc_lengths),
          "a non-empty list of positive integers")
    check(0 <= p_reassign <= 1, "p_reassign", p_reassign, "a probability in [0, 1]")
    check(0 <= p_resample_length <= 1, "p_resample_length", p_resample_length, "a probability in [0, 1]")


def _uniforms(key: jax.Array, n: int) -> np.ndarray:
    return np.asarray(jax.random.uniform(key, (n,)), np.float64)


def _other(member: int, size: int, u: float) -> int:
    """The member that uniform `u` picks among the `size - 1` others of `member` (itself when
    alone)."""
    if size == 1:
        return member
    pick = min(int(u * (size - 1)), size - 2)
    return pick + (pick >= member)


def initial(key: jax.Array, size: int, trunc_lengths: Sequence[int]) -> Assignments:
    """Each member's first outer optimizer (another member, uniformly) and truncation length
    (uniformly from trunc_lengths)."""
    k_outer, k_length = jax.random.split(key)
    u_outer, u_length = _uniforms(k_outer, size), _uniforms(k_length, size)
    return Assignments(tuple(_other(i, size, float(u)) for i, u in enumerate(u_outer)),
                       tuple(int(trunc_lengths[min(int(u * len(trunc_lengths)), len(trunc_lengths) - 1)])
                             for u in u_length))


def draws(key: jax.Array, size: int) -> Draws:
    """The random numbers of one exploit step."""
    k_pair, k_rest = jax.random.split(key)
    pair = np.asarray(jax.random.choice(k_pair, size, (2,), replace=size < 2))
    reassign, other, resample, length = (float(u) for u in _uniforms(k_rest, 4))
    return Draws((int(pair[0]), int(pair[1])), reassign, other, resample, length)


def rank(score: float, member: int, higher_is_better: bool = False) -> tuple[bool, float, int]:
    """A member's place in a comparison, lowest first: a finite score before a non-finite one (a
    diverged member always loses to one that is not), then the better score, then, on an exact tie
    or when both are non-finite, the lower member index. The rule is deterministic and does not
    depend on the order the pair was drawn in: an exploit step between two equal members always
    keeps the lower-indexed one."""
    finite = bool(np.isfinite(score))
    return (not finite, (-score if higher_is_better else score) if finite else 0.0, member)


def best(scores: Sequence[float], higher_is_better: bool = False) -> int:
    """The index of the best of `scores` (one per member) under `rank`'s rule."""
    return min(range(len(scores)), key=lambda i: rank(float(scores[i]), i, higher_is_better))


def exploit_explore(a: Assignments, scores: Sequence[float], d: Draws, trunc_lengths: Sequence[int],
                    p_reassign: float = 0.5, p_resample_length: float = 0.1,
                    higher_is_better: bool = False) -> tuple[Assignments, Exploit]:
    """One exploit/explore step: the new assignments and what happened. `scores` are the two
    drawn members' evaluation scores, in `d.pair`'s order (lower is better unless
    `higher_is_better`); the winner is the first under `rank` (ties: the lower member index)."""
    first, second = d.pair
    first_wins = (rank(float(scores[0]), first, higher_is_better) < rank(float(scores[1]), second, higher_is_better))
    winner, loser = (first, second) if first_wins else (second, first)
    size = len(a.outer)
    outer = a.outer[winner]
    reassigned = bool(d.reassign < p_reassign) or (outer == loser and size > 1)
    if reassigned:
        outer = _other(loser, size, d.other)
    length = a.trunc_length[loser]  # not copied: the paper copies theta and the outer optimizer
    resampled = bool(d.resample < p_resample_length)
    if resampled:
        length = int(trunc_lengths[min(int(d.length * len(trunc_lengths)), len(trunc_lengths) - 1)])
    new_outer, new_length = list(a.outer), list(a.trunc_length)
    new_outer[loser], new_length[loser] = outer, length
    return (Assignments(tuple(new_outer), tuple(new_length)),
            Exploit(winner, loser, outer, length, reassigned, resampled))
