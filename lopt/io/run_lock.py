"""One writer per run directory: a live `lopt` process holds an exclusive lock on the directory's
`.lopt.lock` (`fcntl.flock`), which records who holds it (host, pid, start time, command). A second
process into the same directory is refused at once, naming the holder. The kernel drops the lock
when its process ends, however it ends (SIGKILL, a crash, a reboot), so a lock left by a dead job
never blocks the resume: the file stays behind, stale and ignored. On a network filesystem the lock
protects only as far as that filesystem supports `flock` across hosts (NFSv4 and Lustre do)."""
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lopt.errors import UserError

LOCK_FILE = ".lopt.lock"


@dataclass
class RunLock:
    """A held lock: released by `release()` or when this process ends."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def _holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # written at this moment, or not by lopt
        return {}


def refusal(run_dir: Path, holder: dict[str, Any]) -> UserError:
    """The error of a process refused because `holder` writes into `run_dir`."""
    who = (f"`{holder.get('command', 'lopt')}` (pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
           f"started {holder.get('started', '?')})")
    return UserError(f"Another lopt process is writing into {run_dir}: {who}. Two processes in one run directory "
                     f"would interleave their checkpoints and results, so this one stops before writing anything. "
                     f"Wait for it to end or stop it (a requeued or resumed job must not run beside the job it "
                     f"continues), or give this run another directory (hydra.run.dir=...).")


def acquire(run_dir: Path, command: str) -> RunLock:
    """Hold `run_dir`'s lock (creating the directory), recording this process as its holder; a
    `UserError` naming the holder when a live process holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise refusal(run_dir, _holder(path)) from None
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now().isoformat(timespec="seconds"),
              "command": command}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return RunLock(path, fd)


def check_free(run_dir: Path) -> None:
    """Raise `acquire`'s error if a live process holds `run_dir`'s lock; take nothing, write nothing."""
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise refusal(run_dir, _holder(path)) from None
    finally:
        os.close(fd)  # closing drops the probe's shared lock
