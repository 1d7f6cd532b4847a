"""Sizes that cannot fit in memory are refused before anything is allocated or written (one
paragraph, exit status 2, no run directory), with the largest size that fits; and compilation is
announced before the work starts."""
import re
import time

import pytest

from lopt.platform import memory
from tests.conftest import TINY

# 100000 tasks of the digits MLP need about 35 GB (learnable_adam; 44 GB with small_fc_lopt), more than
# this 24 GB machine has; a machine with much more memory gets a size that does not fit there either.
NUM_TASKS = 100_000 if memory.host_available_bytes() < 25e9 else 10_000_000
TINY_META_TRAIN = [o for o in TINY if not o.startswith(("num_tasks=", "data.", "tracking."))] + ["lopt=learnable_adam"]


@pytest.fixture
def lopt(lopt_here, monkeypatch):
    monkeypatch.delenv(memory.LIMIT_ENV, raising=False)
    return lambda *args: lopt_here(*args, "tracking.mode=disabled")


def _refused(code: int, capsys, tmp_path) -> str:
    """The one-paragraph error of a refused run that wrote nothing."""
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    errors = err.split("lopt: error: ")[1:]
    assert len(errors) == 1 and "\n\n" not in errors[0].strip()
    assert not (tmp_path / "outputs").exists()
    return " ".join(errors[0].split())


def test_meta_train_refuses_num_tasks_that_cannot_fit(lopt, tmp_path, capsys):
    start = time.perf_counter()
    message = _refused(lopt("meta-train", f"num_tasks={NUM_TASKS}", *TINY_META_TRAIN), capsys, tmp_path)
    assert time.perf_counter() - start < 300  # one compile, no allocation (it was 80 s of growing memory)
    assert message.startswith(f"num_tasks={NUM_TASKS} needs about ")
    assert " GB of memory for the meta-training state and the outer step (estimated before allocating anything), " \
           "but the CPU has " in message
    assert re.search(r"a run may use at most 90% of that \([\d.]+ GB\)\. The largest num_tasks that fits is about "
                     r"\d+: lower num_tasks\.", message), message


def test_evaluate_refuses_num_seeds_that_cannot_fit(lopt, tmp_path, capsys):
    message = _refused(lopt("evaluate", "num_seeds=1000000", "num_steps=20"), capsys, tmp_path)
    assert message.startswith("num_seeds=1000000 needs about ")
    assert re.search(r"The largest num_seeds that fits is about \d+: lower num_seeds", message), message


def test_baseline_sweep_refuses_configurations_that_cannot_fit_and_suggests_a_batch_size(lopt, tmp_path, capsys):
    message = _refused(lopt("baseline-sweep", "sweep.num_samples=200000", "num_steps=20"), capsys, tmp_path)
    assert message.startswith("Training 200000 configurations x 5 seeds at once needs about ")
    largest = re.search(r"The largest sweep.batch_size that fits is about (\d+): set sweep.batch_size=(\d+) ",
                        message)
    assert largest and largest[1] == largest[2], message


def test_the_suggested_size_fits_and_compilation_is_announced(lopt, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(memory.LIMIT_ENV, "3e7")
    message = _refused(lopt("evaluate", "num_seeds=1000", "num_steps=20"), capsys, tmp_path)
    assert f"but {memory.LIMIT_ENV}=3e7 allows 30.0 MB per device, and a run may use at most 90% of that" in message
    largest = int(re.search(r"The largest num_seeds that fits is about (\d+)", message)[1])
    assert lopt("evaluate", f"num_seeds={largest}", "num_steps=20") == 0
    out = capsys.readouterr().out
    assert f"compiling the training of {largest} seeds..." in out
    assert re.search(rf"The training of {largest} seeds compiled in [\d.]+ s; needs about [\d.]+ MB of memory "
                     rf"\({memory.LIMIT_ENV}=3e7 allows 30.0 MB per device\)", " ".join(out.split())), out


def test_meta_train_says_it_is_compiling_before_the_progress_bar(lopt, capsys):
    assert lopt("meta-train", "num_tasks=2", *TINY_META_TRAIN) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "compiling the outer step..." in out
    compiled = re.search(r"The outer step compiled in ([\d.]+) s; needs about [\d.]+ [kM]B of memory", out)
    assert compiled and compiled.start() < out.index("meta-train ━")
    assert re.search(r"compile_s │ [\d.]+", out)
