"""What the paper-reproduction scripts (`scripts/reproduce_*.py`) share: running an `lopt` command
as a user would type it, composing the config a command will run, and the verdict a script prints
per claim of its paper (the claim, the numbers measured, reproduced or not)."""
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lopt.config import compose
from lopt.errors import ConfigError
from lopt.results import write_json

SHARED_NODES = ("data", "tracking", "distributed")  # config nodes every lopt command has


def run_lopt(script: str, command: str, run_dir: Path, overrides: list[str], multirun: bool = False,
             tolerate: Callable[[Path], bool] | None = None) -> tuple[float, str | None]:
    """`lopt <command> *overrides` in a subprocess, writing into `run_dir` (with `multirun`: a sweep,
    one job per subdirectory): its wall time in seconds, and the error of a failed run that
    `tolerate(run_dir)` accepts as a result (e.g. a meta-training stopped by non-finite losses after
    logging evaluations), else None. Any other failure stops `script`, naming the command."""
    where = f"hydra.sweep.dir={run_dir}" if multirun else f"hydra.run.dir={run_dir}"
    words = [command, *(["--multirun"] if multirun else []), *overrides, where]
    print(f"\n$ lopt {' '.join(words)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lopt_cli.main", *words], text=True,
                          stderr=None if tolerate is None else subprocess.PIPE)  # read only to report the error
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    wall = time.perf_counter() - start
    if proc.returncode == 0:
        return wall, None
    if tolerate is not None and tolerate(run_dir):
        errors = [line for line in proc.stderr.splitlines() if line.startswith("lopt: error:")]
        print(f"\n{script}: `lopt {command}` stopped early; what it logged is the result.", flush=True)
        return wall, errors[-1].removeprefix("lopt: error:").strip() if errors else f"exit status {proc.returncode}"
    sys.exit(f"{script}: `lopt {command}` failed (see above); stopping.")


def compose_config(script: str, command: str, overrides: list[str]) -> DictConfig:
    """The config `lopt <command> *overrides` runs; a config that does not compose stops `script`."""
    try:
        return compose(command.replace("-", "_"), overrides)
    except ConfigError as err:
        sys.exit(f"{script}: {err}")


def override_key(override: str) -> str:
    """The config key a command-line override sets (`+a.b=1` -> `a.b`)."""
    return override.lstrip("+~").split("=", 1)[0]


def forwarded(overrides: list[str], nodes: tuple[str, ...] = SHARED_NODES) -> list[str]:
    """The overrides of the config nodes `nodes` (by default those every command has): what a script
    passes on from one command's overrides to another command."""
    return [o for o in overrides if override_key(o).split(".", 1)[0] in nodes]


@dataclass(frozen=True)
class Verdict:
    """One claim of a paper checked against measured numbers."""

    figure: str  # where the paper makes the claim, e.g. "Fig. 4a"
    claim: str
    measured: str  # the numbers the verdict rests on, in words
    reproduced: bool

    def line(self) -> str:
        """The line a script prints."""
        outcome = "REPRODUCED" if self.reproduced else "NOT reproduced"
        return f"verdict ({self.figure}): {self.claim}: {self.measured} -> {outcome}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def finish(path: Path, result: dict[str, Any], verdicts: list[Verdict]) -> dict[str, Any]:
    """A script's last step: write `result` with its `verdicts` to the JSON file `path`, print one
    line per verdict and where the results are; returns the result."""
    result["verdicts"] = [v.to_json() for v in verdicts]
    write_json(path, result)
    print()
    for v in verdicts:
        print(v.line())
    print(f"Results in {path.parent}.")
    return result
