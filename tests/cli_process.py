"""`lopt` in a fresh process, as a shell runs it: for the tests about what only a process shows
(exit status and output of the real entry point, Hydra's own logging, launchers, signals, several
processes at once). Tests about anything else run the CLI in-process (`lopt_here`, faster)."""
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

COMMAND = [sys.executable, "-m", "lopt_cli.main"]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment with W&B disabled, and `extra`."""
    return {**os.environ, "WANDB_MODE": "disabled", **extra}


def run(*args: str, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess:
    """`lopt *args` run to its end from `cwd`, stdout and stderr captured as text; `env` is the
    whole environment (default `environment()`)."""
    return subprocess.run([*COMMAND, *args], cwd=cwd, env=dict(env or environment()), capture_output=True, text=True,
                          timeout=timeout)


def start(*args: str, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
          output: int = subprocess.PIPE) -> subprocess.Popen:
    """`lopt *args` started and not awaited; stdout and stderr go to `output`."""
    return subprocess.Popen([*COMMAND, *args], cwd=cwd, env=dict(env or environment()), stdout=output, stderr=output,
                            text=True)


def kill_after_checkpoint(*args: str, cwd: Path, run_dir: Path, step: int) -> None:
    """Start `lopt *args` (writing to `run_dir`) and SIGKILL it as soon as its checkpoint `step` is
    on disk: a job killed by its scheduler, with no chance to clean up."""
    proc = start(*args, cwd=cwd, output=subprocess.DEVNULL)
    while not (run_dir / "checkpoints" / str(step)).is_dir():
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "final_theta").exists()
