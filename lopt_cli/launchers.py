"""Hydra launcher presets (conf/hydra/launcher/) and the share of the machine each local job gets.

`hydra/launcher=joblib` runs a multirun's jobs as parallel local processes. Left alone, every JAX
process would size its thread pool to all cores (and on a GPU preallocate 75% of its memory), so
parallel jobs would fight. `pin_to_share` gives each worker process one of `parallel` slots
(claimed with a file lock, so two running workers never share one) and restricts it to that slot's
cores and GPU memory fraction before JAX starts its backend.
"""
import fcntl
import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from lopt.errors import ConfigError

# preset name -> (module its launcher class lives in, pip extra that installs it)
PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
}
SWEEP_JOBS_ENV = "LOPT_SWEEP_JOBS"  # set by `lopt` to the number of jobs of the multirun
GPU_MEMORY_SHARE = 0.9  # of the GPU's memory, split evenly over the jobs running at once

_START_CPUS = sorted(os.sched_getaffinity(0))  # this process's cores before any pinning
_slot_lock: Any = None  # the open lock file holding this process's slot (kept for its lifetime)
_pinned_sweep: str | None = None


def _installed(module: str) -> bool:
    """Whether `module` can be imported; False also when a parent package (e.g. `hydra_plugins`,
    absent on a fresh install) does not exist, where `find_spec` raises instead of returning None."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ModuleNotFoundError for a missing parent; ValueError: no __spec__
        return False


def check_plugin(launcher: str) -> None:
    """A ConfigError if `hydra/launcher=<launcher>` needs a plugin that is not installed."""
    module, extra = PLUGINS.get(launcher, (None, None))
    if module is not None and not _installed(module):
        raise ConfigError(
            f"hydra/launcher={launcher} needs Hydra's {launcher.split('_')[0]} launcher plugin, which is not "
            f"installed. Install it with `pip install 'lopt[{extra}]'`, or run the sweep in this process "
            f"with the default launcher (drop hydra/launcher=)."
        )


def parallel_jobs(n_jobs: int, cpus: int, sweep_jobs: int | None) -> int:
    """How many jobs joblib runs at once: `n_jobs` with joblib's meaning of negative values
    (-1: one per core), capped by the number of jobs in the sweep."""
    parallel = n_jobs if n_jobs > 0 else max(cpus + 1 + n_jobs, 1)
    return max(min(parallel, sweep_jobs or parallel), 1)


def core_share(cpus: list[int], slot: int, parallel: int) -> list[int]:
    """The cores of `slot` when `cpus` are split into `parallel` contiguous, disjoint shares (one
    core each, shared round-robin, when there are more slots than cores)."""
    if len(cpus) < parallel:
        return [cpus[slot % len(cpus)]]
    return cpus[slot * len(cpus) // parallel:(slot + 1) * len(cpus) // parallel]


def _claim_slot(sweep_dir: str, parallel: int) -> int | None:
    """The first of `parallel` slots of this sweep that no other live process holds (None: all held)."""
    global _slot_lock
    key = hashlib.sha1(os.path.abspath(sweep_dir).encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / "lopt-slots" / key
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(parallel):
        lock = open(directory / f"{slot}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if _slot_lock is not None:
            _slot_lock.close()  # a slot of an earlier sweep this (reused) worker ran
        _slot_lock = lock
        return slot
    return None


def _set_affinity(cores: list[int]) -> None:
    """Restrict every thread of this process (JAX's pools included, if started) to `cores`."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # the thread ended meanwhile
            pass


def pin_to_share(hydra_cfg: Any) -> dict[str, Any] | None:
    """Under the joblib launcher, restrict this worker to its slot's cores and GPU memory fraction;
    the slot, cores and fraction it got (None: not a joblib job, or already pinned for this sweep)."""
    global _pinned_sweep
    launcher = hydra_cfg.launcher
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return None
    sweep_dir = str(hydra_cfg.sweep.dir)
    if _pinned_sweep == sweep_dir:
        return None
    sweep_jobs = os.environ.get(SWEEP_JOBS_ENV)
    parallel = parallel_jobs(int(launcher.n_jobs), len(_START_CPUS), int(sweep_jobs) if sweep_jobs else None)
    slot = _claim_slot(sweep_dir, parallel)
    if slot is None:
        return None
    cores = core_share(_START_CPUS, slot, parallel)
    _set_affinity(cores)
    fraction = f"{GPU_MEMORY_SHARE / parallel:.3f}"
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", fraction)
    _pinned_sweep = sweep_dir
    return {"slot": slot, "parallel": parallel, "cores": cores,
            "gpu_memory_fraction": os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"]}
