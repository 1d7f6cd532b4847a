"""The baseline store: one file per (task, tuned optimizer), found by a key of what it is a baseline for.

A baseline is a hand-designed optimizer's sweep on one task: every configuration's per-step
training losses on every seed, over `horizon_mult` times the task's evaluated length (VeLO runs its
baselines 10x longer, so a faster optimizer's speedup is measured rather than capped at 1). Its key
hashes the task's config, its evaluated length and the horizon multiple, the optimizer's name and
the hyperparameters it was not tuned over, how it was tuned, and the data source, so a baseline is
used only for exactly the task it was made for; a file for the same task and optimizer with another
key is reported (with what differs), never used.

Baselines train on seeds of their own stream (`BASELINE_SEEDS`); evaluations draw theirs from
another (`EVALUATION_SEEDS`), so no evaluation seed ever tuned a baseline.
"""
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lopt.config import check
from lopt.data.settings import DataSettings
from lopt.errors import ConfigError, UserError
from lopt.io.results import write_json
from lopt.optimizers.hand_designed import HandDesigned
from lopt.tasks import TaskConfig

BASELINE_SEEDS, EVALUATION_SEEDS = 0, 1  # folded into the run's seed: disjoint key streams
FORMAT = 2  # 2: the horizon multiple is part of the key
HORIZON_MULT = 10  # VeLO's: baselines run 10x the evaluated length
# Task-config fields that are left out of the key at this value, so that adding them to a config
# class did not change the keys of the baselines stored before (a quadratic's init_scale of 1.0 is
# left out too).
DEFAULT_FIELDS = {"init_scale": 1.0}


@dataclass(frozen=True)
class StoreSettings:
    """The `baselines` node of `lopt baseline-sweep`: where baseline files are written, and how many
    times each task's evaluated length the baselines run (the speedup's cap)."""

    dir: str = "outputs/baselines"
    horizon_mult: int = HORIZON_MULT

    def __post_init__(self):
        check(bool(self.dir.strip()), "dir", self.dir, "a directory path")
        check(not isinstance(self.horizon_mult, bool) and isinstance(self.horizon_mult, int)
              and self.horizon_mult >= 1, "horizon_mult", self.horizon_mult,
              f"a positive integer (the baselines run that many times each task's length; VeLO: {HORIZON_MULT})")


@dataclass(frozen=True)
class BaselineSettings(StoreSettings):
    """The `baselines` node of `lopt evaluate`: where baseline files are read, which tuned
    optimizer scores are measured against (a config of the `optimizer/` group) and how it was
    tuned (`grid` over the learning rate, or `random` search over its whole space), and whether
    the tasks that have no baseline yet are swept first (else the error names the command)."""

    optimizer: str = "adam"
    search: str = "grid"
    run_missing: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(self.search in ("grid", "random"), "search", self.search, "one of ['grid', 'random']")


def key_fields(task: TaskConfig, num_steps: int, horizon_mult: int, optimizer: HandDesigned, name: str,
               swept: list[str], data: DataSettings) -> dict[str, Any]:
    """What a baseline is for: the task config, its evaluated length and how many times that it
    ran, the optimizer and its hyperparameters that were not tuned, how it was tuned, and where the
    data came from."""
    fixed = {k: float(v) for k, v in optimizer.hyperparameters().items() if k not in swept}
    source: dict[str, Any] = {"source": data.source}
    if data.source == "synthetic":
        source["synthetic_examples"] = data.synthetic_examples
    task_fields = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(task))).items()  # tuples as lists
                   if k not in DEFAULT_FIELDS or v != DEFAULT_FIELDS[k]}
    return {"task": task_fields, "num_steps": num_steps, "horizon_mult": horizon_mult,
            "optimizer": {"name": name, **fixed}, "tuned": sorted(swept), "data": source}


def key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _differences(found: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    """The leaves where two key-field trees differ, as 'path: found -> wanted'."""
    out = []
    for k in sorted(set(found) | set(wanted)):
        a, b = found.get(k), wanted.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} there, {b!r} here")
    return out


class BaselineStore:
    """Baseline files in `root`, named `<task>.<optimizer>.<key>.json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def path(self, fields: dict[str, Any]) -> Path:
        return self.root / f"{fields['task']['name']}.{fields['optimizer']['name']}.{key(fields)}.json"

    def document(self, fields: dict[str, Any], hyperparameters: list[dict[str, float]], train_loss: np.ndarray,
                 best: int, at_edge: str | None) -> dict[str, Any]:
        """A sweep as the baseline `load` returns: `train_loss` [configurations, seeds, steps] (NaN
        where a seed diverged), the index of the best configuration and whether its learning rate
        lies at an edge of the grid."""
        return {"format": FORMAT, "key": key(fields), "fields": fields, "hyperparameters": hyperparameters,
                "best": best, "at_edge": at_edge, "train_loss": np.where(np.isfinite(train_loss), train_loss, np.nan),
                "path": str(self.path(fields))}

    def write(self, baseline: dict[str, Any]) -> Path:
        """Store a baseline made by `document`, written whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {k: v for k, v in baseline.items() if k != "path"}
        doc["train_loss"] = [[[None if math.isnan(v) else v for v in seed] for seed in cfg]
                             for cfg in baseline["train_loss"].tolist()]
        write_json(Path(baseline["path"]), doc)
        return Path(baseline["path"])

    def load(self, fields: dict[str, Any], command: str | None, node: str = "baselines") -> dict[str, Any]:
        """The baseline stored for exactly `fields`, with `train_loss` as an array (NaN where a seed
        diverged). A missing one is a UserError naming `command`, the one that makes it (None: no
        command makes it, `{node}.run_missing=true` does), and any baseline of the same task and
        optimizer made for something else, with what differs."""
        path = self.path(fields)
        task, optimizer = fields["task"]["name"], fields["optimizer"]["name"]
        if not path.exists():
            others = sorted(self.root.glob(f"{task}.{optimizer}.*.json")) if self.root.is_dir() else []
            detail = ""
            for other in others[:3]:
                try:
                    diff = _differences(json.loads(other.read_text(encoding="utf-8"))["fields"], fields)
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                detail += f" {other} was made for another configuration ({'; '.join(diff[:3])}) and is not used."
            make = (f"Make the missing baselines with `{command}`, or pass {node}.run_missing=true." if command else
                    f"Pass {node}.run_missing=true: the run then sweeps them first (`lopt baseline-sweep` makes "
                    f"baselines of a shipped suite's tasks only).")
            raise UserError(f"No {optimizer} baseline for task {task!r} in {self.root} (key {key(fields)}).{detail} "
                            f"{make}")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            stored = doc["fields"]
            curves = np.asarray([[[np.nan if v is None else v for v in s] for s in c] for c in doc["train_loss"]],
                                float)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"The baseline file {path} is not readable ({err}); delete it and run `{command}`.") \
                from None
        if stored != fields or doc.get("key") != key(fields):
            raise ConfigError(f"The baseline file {path} was made for another configuration than its name says "
                              f"({'; '.join(_differences(stored, fields)[:3]) or 'key mismatch'}); it is not used. "
                              f"Delete it and run `{command}`.")
        return {**doc, "train_loss": curves, "path": str(path)}
