"""Each process of a multi-process run, supervised. When a process of the run is lost (its host
fails, its task is killed), JAX's coordination service notices the missing heartbeats after
`distributed.heartbeat_timeout_s` and ends every other process with a C++ abort: a stack trace,
and no word from lopt, since no Python code runs after it. So `lopt` runs each such process as the
child of a small parent that relays a scheduler's signals to it (SIGTERM, SIGUSR2: graceful
preemption) and, when the child was aborted, says in one paragraph what happened and how to resume
(exit status 2). Single-process runs are not wrapped."""
import os
import signal
import subprocess
import sys
from typing import Any

from lopt.platform import distributed
from lopt_cli.job import print_error

ENV = "LOPT_SUPERVISED"  # set in the child: it runs the command itself
RELAYED = (signal.SIGTERM, signal.SIGUSR2)


def needed(cfg: Any) -> bool:
    """Whether this `lopt` is one process of a multi-process launch, not yet supervised."""
    return ENV not in os.environ and distributed.should_initialize(distributed.parse(cfg.get("distributed")),
                                                                   os.environ)


def lost_peer_message(timeout_s: int) -> str:
    return (f"This process of a multi-process run was stopped by JAX's distributed service: another process of "
            f"the run sent no heartbeat for distributed.heartbeat_timeout_s={timeout_s} s (a lost host or a killed "
            f"task; JAX's own message is above). The checkpoints in the run directory are intact. Relaunch every "
            f"process of the run with the same command: it resumes from the last checkpoint.")


def _die_with_parent() -> None:
    """In the child, before it runs: SIGKILL when the supervisor dies (Linux), so a killed task
    leaves no orphan computing (and holding the run directory's lock)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(argv: list[str], cfg: Any) -> int:
    """`lopt *argv` in a child process, signals relayed; its exit status, or 2 with a paragraph when
    the distributed service aborted it."""
    child = subprocess.Popen([sys.executable, "-m", "lopt_cli.main", *argv], env={**os.environ, ENV: "1"},
                             preexec_fn=_die_with_parent)
    previous = {s: signal.signal(s, lambda signum, frame: child.send_signal(signum)) for s in RELAYED}
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child from the terminal
    try:
        code = child.wait()
    finally:
        for s, handler in {**previous, signal.SIGINT: interrupt}.items():
            signal.signal(s, handler)
    if code == -signal.SIGABRT:
        print_error(lost_peer_message(distributed.parse(cfg.get("distributed")).heartbeat_timeout_s))
        return 2
    return code if code >= 0 else 128 - code
