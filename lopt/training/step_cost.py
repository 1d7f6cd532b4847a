"""What one training step with an optimizer costs on a task: wall time and memory, measured as
training runs it (a batch's gradient and the optimizer's update, `steps` of them in one jitted
`lax.scan`, one network, parameters and state donated), so hand-designed and learned optimizers can
be compared on cost as Metz et al. 2022, "Practical tradeoffs between memory, compute, and
performance in learned optimizers" (arXiv:2203.11860), Fig. 1 and Table 1 compare them.

Optimizers take turns in each timing round and each keeps its best round, so a loaded machine slows
all of them alike (docs/performance.md's benchmarks time the same way).
"""
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from lopt.base import Optimizer, PRNGKey, Task
from lopt.config import check
from lopt.data import Dataset
from lopt.platform import memory
from lopt.training import curves


@dataclass(frozen=True)
class StepCost:
    """The cost of one training step of one network."""

    step_s: float  # wall time of one step (gradient + update), the best timing round
    param_bytes: int  # the network's parameters
    state_bytes: int  # the optimizer's state for them (momentum, second moments, ...)
    program_bytes: int | None  # what the compiled steps hold at once: arguments, outputs and temporaries
    #                            (`lopt.platform.memory.Footprint`; None where the backend does not report it)
    compile_s: float

    def to_json(self) -> dict[str, Any]:
        return {"step_ms": self.step_s * 1e3, "param_bytes": self.param_bytes, "state_bytes": self.state_bytes,
                "program_bytes": self.program_bytes, "compile_s": self.compile_s}


@dataclass
class _Compiled:
    run: Callable[[], None]  # runs the steps once, feeding the donated buffers back
    cost: Callable[[float], StepCost]


def _compile(task: Task, optimizer: Optimizer, data: Dataset | None, key: PRNGKey, steps: int) -> _Compiled:
    step = curves.train_step(task, optimizer, None, data)

    def run(params: Any, state: Any, key: PRNGKey) -> tuple[Any, Any]:
        return jax.lax.scan(step, (params, state), jax.random.split(key, steps))[0]

    k_init, k_steps = jax.random.split(key)
    params = task.init(k_init)
    # A leaf of its own per buffer: a state may hold one array twice (fresh zeros), and a buffer
    # cannot be donated twice.
    params, state = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True),
                                           (params, optimizer.init(None, params, steps)))
    start = time.perf_counter()
    compiled = jax.jit(run, donate_argnums=(0, 1)).lower(params, state, k_steps).compile()
    compile_s = time.perf_counter() - start
    footprint = memory.footprint(compiled)
    param_bytes, state_bytes = memory.tree_bytes(params), memory.tree_bytes(state)
    held = {"carry": (params, state)}

    def once() -> None:
        held["carry"] = jax.block_until_ready(compiled(*held["carry"], k_steps))

    return _Compiled(once, lambda step_s: StepCost(step_s, param_bytes, state_bytes,
                                                   None if footprint is None else footprint.total, compile_s))


def measure(task: Task, optimizers: Mapping[str, Optimizer], data: Dataset | None, steps: int = 50,
            rounds: int = 5, seed: int = 0, clock: Callable[[], float] = time.perf_counter) -> dict[str, StepCost]:
    """The `StepCost` of each of `optimizers` (hand-designed, or learned through their optax export
    with theta inside) training `task`: `steps` steps per call after a warm-up call, `rounds` rounds
    in which every optimizer runs once, each optimizer's best round (timed by `clock`) divided by
    `steps`."""
    check(steps > 0, "steps", steps, "a positive integer")
    check(rounds > 0, "rounds", rounds, "a positive integer")
    key = jax.random.PRNGKey(seed)
    built = {name: _compile(task, opt, data, key, steps) for name, opt in optimizers.items()}
    for c in built.values():
        c.run()  # warm-up: the first call allocates
    best = dict.fromkeys(built, float("inf"))
    for _ in range(rounds):
        for name, c in built.items():
            start = clock()
            c.run()
            best[name] = min(best[name], clock() - start)
    return {name: c.cost(best[name] / steps) for name, c in built.items()}


def overhead(costs: Mapping[str, StepCost], reference: str) -> dict[str, float]:
    """Each optimizer's step time as a multiple of `reference`'s (Practical tradeoffs, Table 1's
    "LOpt multiplier" over SGD)."""
    return {name: c.step_s / costs[reference].step_s for name, c in costs.items()}
