"""Multiple devices and hosts: the task axis sharded over a 1-D device mesh, everything else replicated.

Meta-training shards the leading (branches x tasks) axis of the leaves the estimator declares
(`GradientEstimator.task_axes`); sweeps and
evaluations shard their vmapped axis (configurations, seeds). Placing the inputs with a
`NamedSharding` (or constraining the vmapped axis inside the jitted function) is all XLA needs to
partition the vectorized unroll: each device trains its slice of the problems, and only the
task means (the meta-gradient) cross devices. Under SLURM (several tasks launched by `srun`), or
with a coordinator address, `jax.distributed.initialize()` first joins the processes into one
JAX runtime, and the mesh spans the devices of every process; only process 0 writes results.
"""
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lopt.config import check, from_config
from lopt.errors import ConfigError

AXIS = "tasks"  # the mesh's one axis
MULTI_PROCESS = ("auto", True, False)


@dataclass(frozen=True)
class Settings:
    """The `distributed` config node. `devices`: how many local devices (per process) the task
    axis is sharded over, `auto` for all of them. `multi_process`: join several processes with
    `jax.distributed.initialize()` — `auto` does when `should_initialize` finds a multi-process
    launch; the coordinator keys override what JAX detects from the cluster environment.
    `heartbeat_timeout_s`: how long a silent process (a lost host) goes unnoticed before JAX's
    coordination service stops the others (`lopt_cli.supervisor` then says what happened)."""

    devices: int | str = "auto"
    multi_process: bool | str = "auto"
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    heartbeat_timeout_s: int = 100

    def __post_init__(self):
        check(self.devices == "auto" or (isinstance(self.devices, int) and self.devices > 0), "devices",
              self.devices, "auto or a positive integer")
        check(self.multi_process in MULTI_PROCESS, "multi_process", self.multi_process, "auto, true or false")
        check(self.num_processes is None or self.num_processes > 0, "num_processes", self.num_processes,
              "null or a positive integer")
        check(self.process_id is None or 0 <= self.process_id < (self.num_processes or math.inf), "process_id",
              self.process_id, "null or an integer in [0, num_processes)")
        check(self.heartbeat_timeout_s > 0, "heartbeat_timeout_s", self.heartbeat_timeout_s, "a positive integer")


def should_initialize(s: Settings, env: Mapping[str, str]) -> bool:
    """Whether this process is one of several that must join with `jax.distributed.initialize`:
    with `multi_process: auto`, when a coordinator address is given (config or
    $JAX_COORDINATOR_ADDRESS), when `srun` launched more than one SLURM task, or when Open MPI's
    `mpirun` launched more than one process."""
    if s.multi_process != "auto":
        return bool(s.multi_process)
    if s.coordinator_address or env.get("JAX_COORDINATOR_ADDRESS"):
        return True
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return True
    return int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1


def initialize(s: Settings) -> None:
    """Join the other processes of a multi-process launch (once; before any computation)."""
    if jax.distributed.is_initialized() or not should_initialize(s, os.environ):
        return
    jax.distributed.initialize(s.coordinator_address, s.num_processes, s.process_id,
                               heartbeat_timeout_seconds=s.heartbeat_timeout_s,
                               shutdown_timeout_seconds=s.heartbeat_timeout_s)


def make_mesh(devices: int | str = "auto") -> Mesh:
    """A 1-D mesh over the first `devices` local devices of every process (`auto`: all)."""
    local = jax.local_device_count()
    count = local if devices == "auto" else int(devices)
    if count > local:
        raise ConfigError(f"distributed.devices={devices} is more than the {local} local devices "
                          f"({jax.default_backend()}): it must be auto or at most {local}.")
    by_process: dict[int, list] = {}
    for d in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(d.process_index, []).append(d)
    return Mesh(np.array([d for p in sorted(by_process) for d in by_process[p][:count]]), (AXIS,))


def parse(node: Mapping[str, Any] | None) -> Settings:
    """The validated `distributed` node (commands' `build` call it, so the CLI checks it early)."""
    return from_config(Settings, node or {}, "distributed")


def setup(s: Settings) -> Mesh:
    """Join a multi-process launch and return the mesh. Call it before anything touches a device:
    `jax.distributed.initialize` must come first."""
    initialize(s)
    return make_mesh(s.devices)


def barrier(name: str) -> None:
    """Wait until every process of a multi-process run gets here (nothing to wait for otherwise):
    e.g. all decide whether to resume before any creates the run's checkpoint directory."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def main_says(flag: bool) -> bool:
    """Process 0's `flag`, on every process (a decision only process 0 can make, e.g. whether it
    holds the run directory's lock)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def is_main_process() -> bool:
    """Whether this process writes files and W&B logs (process 0; the only one without multi-host)."""
    return jax.process_index() == 0


def sharded(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the mesh's devices."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(count: int, mesh: Mesh, name: str) -> None:
    """A ConfigError unless `count` (the value of config key `name`) splits evenly over the mesh."""
    if count % mesh.size:
        raise ConfigError(f"{name}={count} does not split over the {mesh.size} devices of the mesh: it must "
                          f"be a multiple of {mesh.size} (or set distributed.devices to a divisor of {count}).")


def task_shardings(task_axes: Any, mesh: Mesh) -> Any:
    """Per leaf of a tree of bools (e.g. `MetaTrainer.task_axes(state)`): sharded over the leading
    axis where True (leaves with a task axis), replicated where False."""
    return jax.tree_util.tree_map(lambda has_axis: sharded(mesh) if has_axis else replicated(mesh), task_axes)


def put(tree: Any, shardings: Any) -> Any:
    """`tree` placed with `shardings` (a matching tree, or one sharding for every leaf). Every
    process holds the same values; with several processes each one supplies its own devices'
    shards (`jax.device_put` only reaches local devices). Leaves that are one array (e.g. two
    zero counters) become separate buffers, so a jitted step can donate all of them."""
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree_util.tree_map(lambda _: shardings, tree)
    seen: set[int] = set()

    def one(x, sharding):
        if id(x) in seen:
            x = jnp.copy(x)
        seen.add(id(x))
        if sharding.is_fully_addressable:
            return jax.device_put(x, sharding)
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(one, tree, shardings)


def jit_step(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, data: Any, mesh: Mesh,
             task_axes: Any) -> tuple[Any, Any, Callable[[Any, Any], tuple[Any, Any]]]:
    """Place a loop's `state` (the leaves that `task_axes`, a matching tree of bools, marks sharded
    over their leading task axis, the rest replicated) and its `data` (replicated), and jit
    `step(state, data) -> (state, report)` with the state donated and kept in that placement, so it
    compiles once."""
    shardings = task_shardings(task_axes, mesh)
    return put(state, shardings), put(data, replicated(mesh)), _donating_jit(step, shardings, mesh)


def trace_step(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, data: Any, mesh: Mesh,
               task_axes: Any) -> jax.stages.Traced:
    """`jit_step`'s program traced ahead of time: `state` may be shapes (`jax.eval_shape`; nothing
    is allocated), `data` is placed replicated (`put`). `.lower().compile()` it, then call it with
    the state placed by `put(state, task_shardings(task_axes, mesh))` and that data."""
    shardings = task_shardings(task_axes, mesh)
    shapes = jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s, weak_type=getattr(x, "weak_type", False)),
        state, shardings)
    return _donating_jit(step, shardings, mesh).trace(shapes, data)


def lower_step(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, data: Any, mesh: Mesh,
               task_axes: Any) -> jax.stages.Lowered:
    """`trace_step`'s program lowered."""
    return trace_step(step, state, data, mesh, task_axes).lower()


def _donating_jit(step: Callable[[Any, Any], tuple[Any, Any]], shardings: Any, mesh: Mesh) -> Any:
    """`step(state, data) -> (state, report)` jitted with the state donated and kept in `shardings`
    (the report replicated), so a loop over it compiles once."""
    return jax.jit(step, donate_argnums=0, out_shardings=(shardings, replicated(mesh)))


def map_sharded(fn: Callable[[Any], Any], xs: Any, mesh: Mesh | None, batch_size: int | None = None) -> Any:
    """`vmap(fn)(xs)` (inside jit) with the leading axis of `xs` split over the mesh's devices
    (`mesh` None: one device, unconstrained), the results replicated. The axis is padded to a
    multiple of the device count by repeating its last element, and the padding is dropped from
    the results. With `batch_size`, `batch_size` elements (rounded up to a multiple of the device
    count) run at a time, one chunk after another (a scan), each chunk split over the mesh."""
    size = 1 if mesh is None else mesh.size
    tree_map = jax.tree_util.tree_map

    def constrain(tree, spec):
        return tree if mesh is None else jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, spec))

    count = jax.tree_util.tree_leaves(xs)[0].shape[0]
    chunk = -(-min(batch_size or count, count) // size) * size
    padded = -(-count // chunk) * chunk
    xs = tree_map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], padded - count, axis=0)]), xs)

    if padded == chunk:
        out = jax.vmap(fn)(constrain(xs, PartitionSpec(AXIS)))
    else:  # rows [chunk, padded / chunk], split over the mesh; step j computes element j of every row
        rows = tree_map(lambda x: x.reshape((chunk, padded // chunk) + x.shape[1:]), xs)
        out = jax.vmap(lambda row: jax.lax.map(fn, row))(constrain(rows, PartitionSpec(AXIS)))
        out = tree_map(lambda y: y.reshape((padded,) + y.shape[2:]), out)
    return constrain(tree_map(lambda y: y[:count], out), PartitionSpec())
