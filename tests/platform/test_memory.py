"""lopt.platform.memory: the estimate of a compiled program's memory, and the refusal of one that cannot fit
(with the largest count that does)."""
import io
import re

import jax
import pytest
from rich.console import Console

from lopt.commands import meta_train
from lopt.commands.base import prepare
from lopt.errors import UserError
from lopt.platform import distributed, memory
from tests.conftest import CHEAP, compose_meta_train

MB = 10**6


def _limit(monkeypatch, n: int) -> None:
    """Every device has `n` bytes."""
    monkeypatch.delenv(memory.LIMIT_ENV, raising=False)
    monkeypatch.setattr(memory, "device_memory_bytes", lambda device: n)


def _compile(tmp_path, num_tasks: int) -> tuple[str, float]:
    """meta-train's ahead-of-time compile of the outer step (CHEAP config): what it printed."""
    cfg = compose_meta_train(*CHEAP, f"num_tasks={num_tasks}")
    console = Console(file=io.StringIO(), width=200)
    job, c = prepare(meta_train.build, cfg, tmp_path, console)
    dataset = c.load_data()
    _, seconds = meta_train._compile(c, None, dataset, job, console)
    return console.file.getvalue(), seconds


def test_the_state_estimate_is_linear_in_num_tasks_and_is_what_init_allocates():
    sizes = {}
    for n in (2, 4, 8):
        trainer = meta_train.build(compose_meta_train(*CHEAP, f"num_tasks={n}")).trainer
        sizes[n] = memory.tree_bytes(jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
    assert sizes[8] - sizes[4] == 2 * (sizes[4] - sizes[2]) > 0
    assert memory.tree_bytes(trainer.init(jax.random.PRNGKey(0))) == sizes[8]


def test_the_compiled_estimate_counts_the_state_and_data_and_grows_with_num_tasks():
    totals = {}
    for n in (2, 8):
        c = meta_train.build(compose_meta_train(*CHEAP, f"num_tasks={n}"))
        shapes = jax.eval_shape(c.trainer.init, jax.random.PRNGKey(0))
        data = c.load_data()
        mesh = distributed.make_mesh(1)
        data = distributed.put(data, distributed.replicated(mesh))
        fp = memory.footprint(distributed.lower_step(c.trainer.step, shapes, data, mesh,
                                                     c.trainer.task_axes(shapes)).compile())
        assert fp is not None
        # the state, and the data the step reads (jit leaves out unused arguments, e.g. the test split)
        assert memory.tree_bytes(shapes) < fp.arguments <= memory.tree_bytes(shapes) + memory.tree_bytes(data)
        assert fp.aliased >= memory.tree_bytes(shapes) * 0.99  # the donated state is updated in place
        totals[n] = fp.total
    assert totals[8] > totals[2] + 3 * memory.tree_bytes(shapes) / 8  # at least the per-task state grows


def test_check_fits_refuses_naming_the_estimate_the_limit_and_the_largest_count():
    sizing = memory.Sizing("num_tasks", 1000, "the state", "lower num_tasks", "use a smaller task")
    limit = memory.Limit(100 * MB, "the CPU has 100.0 MB available")
    memory.check_fits(90 * MB, 10 * MB, sizing, limit)  # exactly SAFETY of the limit passes
    with pytest.raises(UserError) as err:
        memory.check_fits(210 * MB, 10 * MB, sizing, limit)  # 10 MB + 200 kB per task
    message = str(err.value)
    assert message.startswith("num_tasks=1000 needs about 210.0 MB of memory for the state")
    assert "the CPU has 100.0 MB available, and a run may use at most 90% of that (90.0 MB)" in message
    # 10 MB + 392 x 0.2 MB x 1.02 (the per-item margin) <= 90 MB
    assert "The largest num_tasks that fits is about 392: lower num_tasks." in message
    assert "\n" not in message
    memory.check_fits(10 * MB + 400 * 200_000, 10 * MB, sizing, limit)


def test_check_fits_rounds_down_to_the_devices_and_says_when_nothing_fits():
    sizing = memory.Sizing("num_seeds", 64, "the seeds", "lower num_seeds", "use a smaller task", devices=4)
    limit = memory.Limit(100 * MB, "each GPU device has 100.0 MB")
    # 16 seeds per device, 10 MB each: (90 - 10) / (10 x 1.02, the per-item margin) = 7.8: 7 per device fit
    with pytest.raises(UserError, match=r"needs about 170.0 MB per device .* about 28 \(a multiple of the 4 devices\)"):
        memory.check_fits(170 * MB, 10 * MB, sizing, limit)
    with pytest.raises(UserError, match=r"Even num_seeds=4 does not fit \(the part that does not grow with "
                                        r"num_seeds needs about 95.0 MB\): use a smaller task\."):
        memory.check_fits(200 * MB, 95 * MB, sizing, limit)


def test_the_limit_is_the_device_memory_or_the_environment_variable(monkeypatch):
    cpu = jax.devices("cpu")[0]
    assert memory.device_memory_bytes(cpu) == pytest.approx(memory.host_available_bytes(), rel=0.2)
    monkeypatch.setenv(memory.LIMIT_ENV, "5e7")
    assert memory.memory_limit([cpu]) == memory.Limit(50 * MB, f"{memory.LIMIT_ENV}=5e7 allows 50.0 MB per device")
    monkeypatch.setenv(memory.LIMIT_ENV, "lots")
    with pytest.raises(UserError, match=f"{memory.LIMIT_ENV}='lots' is invalid: it must be a positive number"):
        memory.memory_limit([cpu])
    _limit(monkeypatch, 8 * 10**9)
    assert memory.memory_limit([cpu, cpu]) == memory.Limit(4 * 10**9, "the 2 CPU devices share the 8.0 GB the host "
                                                                       "has available (4.0 GB each)")


def test_meta_train_refuses_a_num_tasks_that_cannot_fit_and_its_suggestion_fits(tmp_path, monkeypatch):
    _limit(monkeypatch, 50 * MB)
    with pytest.raises(UserError) as err:
        _compile(tmp_path, 4096)
    message = str(err.value)
    assert message.startswith("num_tasks=4096 needs about ")
    assert "the CPU has 50.0 MB available, and a run may use at most 90% of that (45.0 MB)" in message
    largest = int(re.search(r"The largest num_tasks that fits is about (\d+): lower num_tasks\.", message)[1])
    assert 0 < largest < 4096
    printed, seconds = _compile(tmp_path, largest)  # the suggestion passes the same check
    assert f"The outer step compiled in {seconds:.1f} s; needs about " in printed
    assert not any(tmp_path.iterdir())  # checking writes nothing
