"""Where trained meta-parameters live: a meta-train run's theta directories (final_theta/ at the
end, best_theta/ at the best evaluation) or a shipped pretrained optimizer (`pretrained:<name>`),
and the learned-optimizer architecture the run's config.yaml records. Paths and config only: no
array is read here (`lopt.learned.load_theta` reads them into an architecture)."""
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lopt import pretrained
from lopt.errors import UserError
from lopt.io import resume

_GIVE = ("give a meta-train run directory, its final_theta/ or its best_theta/ directory, or a shipped "
         "optimizer as pretrained:<name>")
THETA_DIRS = ("final_theta", "best_theta")  # a run's trained meta-parameters: at the end, at the best evaluation
_CHECKPOINT_FILES = ("_CHECKPOINT_METADATA", "_METADATA")  # what an orbax checkpoint directory holds


def theta_path(given: str | None, key: str = "theta") -> Path | None:
    """The theta directory that config key `key` names (a meta-train run directory, whose
    final_theta/ it means, or a run's final_theta/ or best_theta/), checked to exist and to hold a
    checkpoint; None if unset. No array is read."""
    if given is None:
        return None
    if not str(given).strip():
        raise UserError(f"{key}={given!r} is empty: {_GIVE}, or leave {key} unset.")
    path = Path(str(pretrained.resolve(given, key))).expanduser()
    if (path / "final_theta").is_dir():
        path = path / "final_theta"
    if path.is_file():
        raise UserError(f"{key}={given!r} is a file, not a run directory: {_GIVE}.")
    if not path.is_dir():
        raise UserError(f"{key}={given!r} does not exist: {_GIVE}.")
    if not any((path / name).exists() for name in _CHECKPOINT_FILES):
        unfinished = (" It has checkpoints/ but no final_theta/: the run has not finished (resume it with "
                      f"`{resume.resume_command(path)}`)." if (path / "checkpoints").is_dir() else "")
        raise UserError(f"{key}={given!r} holds no checkpoint: {_GIVE} (a run directory holds the trained "
                        f"meta-parameters in final_theta/, written when the run finishes).{unfinished}")
    return path


def run_of(path: Path) -> Path:
    """The meta-train run directory of `path` (the run itself, or its final_theta/ or best_theta/)."""
    return path.parent if path.name in THETA_DIRS and not (path / "config.yaml").is_file() else path


def stored_architecture(given: str | Path | None) -> dict[str, Any] | None:
    """The `lopt` node (the learned-optimizer architecture) of the meta-train run that `given`
    names (a run directory or its final_theta/), read from the run's config.yaml; None when there
    is no such file or it names no learned optimizer. No array is read."""
    if given is None or not str(given).strip():
        return None
    try:
        run = run_of(Path(str(pretrained.resolve(given))).expanduser())
        node = OmegaConf.select(OmegaConf.load(run / "config.yaml"), "lopt")
        plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_dict(node) else None
    except Exception:  # missing or unreadable
        return None
    return plain if isinstance(plain, dict) and isinstance(plain.get("name"), str) else None  # type: ignore[return-value]


def recorded_architecture(path: Path, given: str, remedy: str, key: str = "theta") -> dict[str, Any]:
    """The `lopt` node of the run whose theta directory `path` is (`theta_path` of `given`, what
    config key `key` says); a `UserError` ending with `remedy` when the run recorded none."""
    node = stored_architecture(path)
    if node is None:
        raise UserError(f"{key}={given!r} has no config.yaml naming its learned optimizer: {remedy}.")
    return node
