"""What the paper-reproduction scripts (`scripts/reproduce_*.py`) share: running an `lopt` command
as a user would type it, composing the config a command will run, and the verdict a script prints
per claim of its paper (the claim, the numbers measured, reproduced or not)."""
import io
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from lopt.commands.composed import compose_command
from lopt.errors import ConfigError
from lopt.io.results import write_json
from lopt_cli.main import main

SHARED_NODES = ("data", "tracking", "distributed")  # config nodes every lopt command has
# Hydra's logging setup (dictConfig) would shut down the handlers of the calling process (a test's
# captured streams among them); without it a run writes the same files except an empty <job>.log.
IN_PROCESS = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


class _Tee(io.TextIOBase):
    """Writes to `stream` and keeps a copy (a failed command's error line, which a script reports)."""

    def __init__(self, stream: TextIO):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_lopt(script: str, command: str, run_dir: Path, overrides: list[str], multirun: bool = False,
             tolerate: Callable[[Path], bool] | None = None) -> tuple[float, str | None]:
    """`lopt <command> *overrides`, run in this process as the `lopt` entrypoint runs it (validation,
    Hydra's run or sweep, the job's files), writing into `run_dir` (with `multirun`: a sweep, one job
    per subdirectory): its wall time in seconds, and the error of a failed run that
    `tolerate(run_dir)` accepts as a result (e.g. a meta-training stopped by non-finite losses after
    logging evaluations), else None. Any other failure stops `script`, naming the command."""
    where = f"hydra.sweep.dir={run_dir}" if multirun else f"hydra.run.dir={run_dir}"
    words = [command, *(["--multirun"] if multirun else []), *overrides, where]
    print(f"\n$ lopt {' '.join(words)}", flush=True)
    start, argv, stderr = time.perf_counter(), sys.argv, _Tee(sys.stderr)
    try:
        with redirect_stderr(stderr):
            code = main([*words, *IN_PROCESS])
    finally:
        sys.argv = argv  # main() hands its own to Hydra
    wall = time.perf_counter() - start
    if code == 0:
        return wall, None
    if tolerate is not None and tolerate(run_dir):
        errors = [line for line in stderr.copy.getvalue().splitlines() if line.startswith("lopt: error:")]
        print(f"\n{script}: `lopt {command}` stopped early; what it logged is the result.", flush=True)
        return wall, errors[-1].removeprefix("lopt: error:").strip() if errors else f"exit status {code}"
    sys.exit(f"{script}: `lopt {command}` failed (see above); stopping.")


def compose_config(script: str, command: str, overrides: list[str]) -> DictConfig:
    """The config `lopt <command> *overrides` runs; a config that does not compose stops `script`."""
    try:
        return compose_command(command.replace("-", "_"), overrides)
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
