"""Graceful preemption's signal handling: a caught signal only sets a flag; stopping restores the
handlers, hands the signal to the one installed before (submitit's requeue) and raises Preempted."""
import os
import signal

import pytest

from lopt.platform.preemption import Catcher, Preempted


def test_a_caught_signal_waits_for_stop_which_calls_the_previous_handler():
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with Catcher() as catcher:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert catcher.signum == signal.SIGUSR2 and calls == []  # nothing ended, nothing requeued yet
            with pytest.raises(Preempted) as stopped:
                catcher.stop(7)
        assert calls == [signal.SIGUSR2]
        assert stopped.value.exit_status == 128 + signal.SIGUSR2 and str(stopped.value) == "SIGUSR2 at outer iteration 7"
        os.kill(os.getpid(), signal.SIGUSR2)  # the handler before is back
        assert calls == [signal.SIGUSR2, signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_outside_the_loop_sigterm_keeps_its_handler():
    before = signal.getsignal(signal.SIGTERM)
    with Catcher():
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler  # Ctrl-C untouched
