"""One writer per run directory: a live holder refuses a second process, naming itself; a dead
one's lock file blocks nobody."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from lopt.errors import UserError
from lopt.io import run_lock

HOLD = "import sys, time; from pathlib import Path; from lopt.io import run_lock; " \
       "run_lock.acquire(Path(sys.argv[1]), 'lopt meta-train seed=1'); print('held', flush=True); time.sleep(60)"


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run's lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_holder_refuses_others_and_is_named(holder, tmp_path):
    run = tmp_path / "run"
    for attempt in (lambda: run_lock.acquire(run, "lopt evaluate"), lambda: run_lock.check_free(run)):
        with pytest.raises(UserError, match=f"Another lopt process is writing into {run}: `lopt meta-train seed=1` "
                                            f"\\(pid {holder.pid} on host {socket.gethostname()}, started 20"):
            attempt()
    assert json.loads((run / run_lock.LOCK_FILE).read_text())["pid"] == holder.pid  # the refused one wrote nothing


def test_a_killed_holders_lock_blocks_nobody(holder, tmp_path):
    run = tmp_path / "run"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    run_lock.check_free(run)
    lock = run_lock.acquire(run, "lopt meta-train resume=run")
    assert json.loads((run / run_lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    again = run_lock.acquire(run, "lopt meta-train")  # released: free again
    again.release()
    run_lock.check_free(tmp_path / "never-used")  # no lock file: nothing to check
    assert not (tmp_path / "never-used").exists()
