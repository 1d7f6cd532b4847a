"""Will a compiled program fit in memory? Checked before anything big is allocated.

Each command compiles its one program ahead of time from shapes (`jax.eval_shape`; nothing is
allocated), reads what XLA will need (`Compiled.memory_analysis()`: arguments + outputs + temporaries
- donated buffers, per device) and compares it with the device's memory (`bytes_limit` of a
GPU/TPU, the available host RAM on CPU, or $LOPT_MEMORY_LIMIT_BYTES). A program above `SAFETY` of
that is refused with a `UserError` naming the estimate, the limit and the largest count that fits:
memory is about affine in the count (num_tasks, num_seeds, configurations at once), fixed + per item
x count, and the fixed part is what does not grow with it (theta, the data, ...), so one compile
gives both.
"""
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jax
from jax.sharding import Mesh
from rich.console import Console

from lopt.errors import UserError

LIMIT_ENV = "LOPT_MEMORY_LIMIT_BYTES"  # overrides the memory per device the check compares with
SAFETY = 0.9  # refuse a program that needs more than this fraction of the limit
PER_ITEM_MARGIN = 1.02  # a suggested count assumes each item needs this much more than estimated


def tree_bytes(tree: Any) -> int:
    """Bytes of a tree's leaves (arrays or `jax.ShapeDtypeStruct`s)."""
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def host_available_bytes() -> int:
    """Host RAM available to a new allocation: MemAvailable of /proc/meminfo, else the free physical
    pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_memory_bytes(device: Any) -> int | None:
    """Memory one program may use on `device`: the allocator's `bytes_limit` on an accelerator (None
    when the backend does not say), the available host RAM on CPU."""
    if device.platform == "cpu":
        return host_available_bytes()
    try:
        stats = device.memory_stats()
    except Exception:  # a backend without memory stats
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


@dataclass(frozen=True)
class Limit:
    """The memory per device a program may use, and how the error message describes it."""

    bytes: int
    description: str  # completes "but ...", e.g. "the CPU has 20.1 GB available"


def memory_limit(devices: Sequence[Any]) -> Limit | None:
    """The memory per device of `devices` (the mesh's local devices): $LOPT_MEMORY_LIMIT_BYTES,
    else the smallest device's memory; CPU devices share the host's RAM. None when unknown."""
    override = os.environ.get(LIMIT_ENV)
    if override:
        try:
            limit = int(float(override))
        except ValueError:
            limit = 0
        if limit <= 0:
            raise UserError(f"{LIMIT_ENV}={override!r} is invalid: it must be a positive number of bytes (e.g. 8e9).")
        return Limit(limit, f"{LIMIT_ENV}={override} allows {fmt(limit)} per device")
    if not devices:
        return None
    sizes = [device_memory_bytes(d) for d in devices]
    if any(s is None for s in sizes):
        return None
    if devices[0].platform == "cpu":
        host = sizes[0] or 0
        if len(devices) == 1:
            return Limit(host, f"the CPU has {fmt(host)} available")
        return Limit(host // len(devices), f"the {len(devices)} CPU devices share the {fmt(host)} the host has "
                                           f"available ({fmt(host // len(devices))} each)")
    smallest = min(s for s in sizes if s is not None)
    return Limit(smallest, f"each {devices[0].platform.upper()} device has {fmt(smallest)}")


def fmt(n: float) -> str:
    """Bytes in decimal units, e.g. 23.4 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Footprint:
    """What a compiled program needs per device (`Compiled.memory_analysis()`)."""

    arguments: int
    outputs: int
    temps: int
    aliased: int  # outputs written into donated arguments
    code: int

    @property
    def total(self) -> int:
        return self.arguments + self.outputs + self.temps - self.aliased + self.code


def footprint(compiled: Any) -> Footprint | None:
    """The footprint of a `jax.stages.Compiled` (None when the backend does not report it)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # not implemented by this backend
        return None
    if m is None:
        return None
    return Footprint(m.argument_size_in_bytes, m.output_size_in_bytes, m.temp_size_in_bytes,
                     m.alias_size_in_bytes, getattr(m, "generated_code_size_in_bytes", 0))


@dataclass(frozen=True)
class Sizing:
    """The count a program's memory grows with, and what to tell the user when it is too large.
    `remedy` may use `{largest}`; `fallback` is the advice when not even `devices` items fit."""

    name: str  # the config key, e.g. "num_tasks"
    count: int  # its value
    what: str  # what needs the memory, e.g. "the meta-training state and the outer step"
    remedy: str
    fallback: str
    devices: int = 1  # the count is split over this many devices (rounded up)
    subject: str | None = None  # how the message starts (default "<name>=<count>")


def largest_fitting(needed: int, fixed: int, per_device_count: int, budget: float, devices: int) -> int:
    """The largest count (a multiple of `devices`) whose program fits in `budget` bytes per device,
    memory taken as affine in the count: `fixed` bytes plus the rest of `needed` (at
    `per_device_count` items per device) in proportion, `PER_ITEM_MARGIN` more per item. Memory is
    only about affine (XLA pads and schedules buffers differently at other sizes): a suggestion
    estimated without the margin measured 0.4% over the limit it was computed for."""
    per_item = max(needed - fixed, 1) / per_device_count * PER_ITEM_MARGIN
    return max(math.floor((budget - fixed) / per_item), 0) * devices


def check_fits(needed: int, fixed: int, sizing: Sizing, limit: Limit | None) -> None:
    """Refuse, with a `UserError` giving the estimate, the limit and the largest count that fits, a
    program that needs `needed` bytes per device (`fixed` of them independent of the count) when that
    is more than `SAFETY` of `limit`. Nothing to check when the limit is unknown."""
    if limit is None or needed <= SAFETY * limit.bytes:
        return
    s = sizing
    per_device = -(-s.count // s.devices)
    largest = largest_fitting(needed, fixed, per_device, SAFETY * limit.bytes, s.devices)
    where = "" if s.devices == 1 else " per device"
    message = (f"{s.subject or f'{s.name}={s.count}'} needs about {fmt(needed)}{where} of memory for {s.what} "
               f"(estimated before allocating anything), but {limit.description}, and a run may use at most "
               f"{SAFETY:.0%} of that ({fmt(SAFETY * limit.bytes)}). ")
    if largest >= s.devices:
        multiple = "" if s.devices == 1 else f" (a multiple of the {s.devices} devices)"
        message += (f"The largest {s.name} that fits is about {largest}{multiple}: "
                    f"{s.remedy.format(largest=largest)}.")
    else:
        message += (f"Even {s.name}={s.devices} does not fit (the part that does not grow with {s.name} needs "
                    f"about {fmt(fixed)}): {s.fallback}.")
    raise UserError(message + f" ({LIMIT_ENV} overrides the limit.)")


@contextmanager
def _status(console: Console, text: str) -> Iterator[None]:
    """A spinner on a terminal; a plain line in a log."""
    if console.is_terminal:
        with console.status(text):
            yield
    else:
        console.print(text, soft_wrap=True, highlight=False)
        yield


def compile_checked(lower: Callable[[], Any], console: Console, label: str, sizing: Sizing,
                    mesh: Mesh, fixed: Callable[[Footprint], int]) -> tuple[Any, float]:
    """Compile `lower()` (a `jax.stages.Lowered`) under a "compiling <label>..." status, check that
    it fits on this process's devices of `mesh` (`check_fits`; `fixed` gives the bytes of a
    footprint that do not grow with the count) and print the compile time and the estimate.
    Returns the compiled program and the seconds spent lowering and compiling."""
    start = time.perf_counter()
    with _status(console, f"compiling {label}..."):
        compiled = lower().compile()
    seconds = time.perf_counter() - start
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    fp, limit = footprint(compiled), memory_limit(local)
    if fp is not None:
        check_fits(fp.total, fixed(fp), sizing, limit)
    memory = "" if fp is None else f"; needs about {fmt(fp.total)} of memory" + (
        "" if limit is None else f" ({limit.description})")
    console.print(f"{label[0].upper()}{label[1:]} compiled in {seconds:.1f} s{memory}.", soft_wrap=True,
                  highlight=False)
    return compiled, seconds
