"""Graceful preemption: schedulers send SIGTERM (SLURM, Kubernetes) or a chosen signal (submitit:
SIGUSR2, some seconds before a timeout or preemption) before they kill a job. Inside `Catcher` those
signals only set a flag; the meta-training loop finishes the outer iteration in flight, checkpoints
it and raises `Preempted`, so the requeued job resumes where this one stopped, bitwise. A handler
that was installed before (submitit's, which requeues the job) is called after the checkpoint.
Ctrl-C (SIGINT) is left alone."""
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class Preempted(Exception):
    """Meta-training stopped for a signal after checkpointing outer iteration `iteration`."""

    def __init__(self, signum: int, iteration: int):
        super().__init__(signum, iteration)
        self.signum, self.iteration = signum, iteration

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"{signal.Signals(self.signum).name} at outer iteration {self.iteration}"


class Catcher:
    """While entered (in the main thread; elsewhere it catches nothing), SIGNALS set `signum`
    instead of ending the process. `stop(iteration)` restores the handlers, calls the one that was
    installed before (if any) and raises `Preempted`."""

    def __init__(self, signals: tuple[int, ...] = SIGNALS):
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def __enter__(self) -> "Catcher":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._caught) for s in self.signals}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def stop(self, iteration: int) -> None:
        """End the run for the caught signal (SIGTERM on a process that caught none: process 0 did),
        after its checkpoint."""
        signum = self.signum or signal.SIGTERM
        previous: Callable | Any = self._previous.get(signum)
        self.__exit__()
        if callable(previous):  # e.g. submitit's: it requeues the job
            previous(signum, None)
        raise Preempted(signum, iteration)
