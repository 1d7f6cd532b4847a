"""Resuming a meta-training run in its directory: where it is, and whether the config still fits.

A run directory that holds checkpoints continues from the latest one. The resumed config must be
the one stored in the directory's `config.yaml` except for the keys in `MAY_CHANGE`, which do not
change the numbers a run computes: how long it runs, how often it logs and checkpoints, when it
gives up on non-finite losses, where it logs and where its data lives.
"""
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lopt.config import to_plain
from lopt.errors import UserError

MAY_CHANGE = ("resume", "outer_iterations", "log_every", "checkpoint_every", "max_nonfinite_iterations",
              "tracking", "data.dir", "data.download", "population.backend", "population.ray",
              # where a multi-process run's processes meet, and which one this is (a requeued job gets a new
              # node and port; every process checks the config process 0 stored)
              "distributed.coordinator_address", "distributed.process_id", "distributed.heartbeat_timeout_s")
_ABSENT = "(absent)"


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The overrides the run in `run_dir` was started with, as Hydra recorded them (None without
    the record); a resumed run must be given them again."""
    record = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not record.is_file():
        return None
    return [str(o) for o in OmegaConf.load(record) if not str(o).startswith(("hydra/", "resume="))]


def meta_train_command(overrides: Sequence[str]) -> str:
    """`lopt meta-train *overrides`, each quoted for a shell where it needs it."""
    import shlex

    return " ".join(["lopt meta-train", *map(shlex.quote, overrides)])


def resume_command(run_dir: Path) -> str:
    """The command that resumes the meta-train run in `run_dir`: its recorded overrides and resume=."""
    return meta_train_command([*(recorded_overrides(run_dir) or []), f"resume={run_dir}"])


def run_directory(resume: str | None, run_dir: Path) -> Path:
    """The directory a job runs in: `resume` (an existing run) when given, else `run_dir`."""
    if resume is None:
        return Path(run_dir)
    path = Path(resume).expanduser()
    if not (path / "config.yaml").is_file():
        raise UserError(f"resume={resume!r} is not a meta-train run directory: {path / 'config.yaml'} does not "
                        f"exist. Give the directory of an earlier `lopt meta-train` run.")
    return path


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, Mapping):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _may_change(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in MAY_CHANGE)


def check_config(run_dir: Path, cfg: Mapping[str, Any]) -> None:
    """Raise a UserError naming the first key where `cfg` differs from the run's stored config
    (keys in MAY_CHANGE excepted)."""
    path = Path(run_dir) / "config.yaml"
    try:
        stored = _flat(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    except Exception as err:
        raise UserError(f"Cannot resume: {path} is unreadable ({type(err).__name__}: "
                        f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}).") from None
    now = _flat(to_plain(cfg))
    diffs = sorted(k for k in stored.keys() | now.keys()
                   if not _may_change(k) and stored.get(k, _ABSENT) != now.get(k, _ABSENT))
    if diffs:
        key = diffs[0]
        more = f" (and {len(diffs) - 1} more: {', '.join(diffs[1:4])})" if len(diffs) > 1 else ""
        raise UserError(
            f"Cannot resume the run in {run_dir}: its config differs from {path} at {key} "
            f"(stored {stored.get(key, _ABSENT)!r}, now {now.get(key, _ABSENT)!r}){more}. A resumed run "
            f"keeps its config; only {', '.join(MAY_CHANGE[1:])} may change. Start a new run directory "
            f"for a different config.")
