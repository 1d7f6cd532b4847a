"""Resuming meta-training: a run killed at any point and resumed ends bitwise equal to an
uninterrupted one; bad checkpoints and changed configs are clear errors that write nothing."""
import json
import re
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
from omegaconf import OmegaConf
from rich.console import Console

from lopt.commands import meta_train
from lopt.errors import UserError
from lopt.io import resume
from lopt.io.checkpoint import Checkpointer, load_tree
from lopt.io.results import trim_records
from tests import cli_process
from tests.conftest import CHEAP, TINY, compose_meta_train, records

RUN = [*CHEAP, "outer_iterations=12", "checkpoint_every=1"]  # a checkpoint every iteration: time to kill






def theta_leaves(run_dir):
    lopt_ = meta_train.build(compose_meta_train(*RUN)).trainer.lopt
    return jax.tree_util.tree_leaves(load_tree(run_dir / "final_theta", lopt_.init_theta(jax.random.PRNGKey(0))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and the same run SIGKILLed after its second checkpoint, left with a
    half-written checkpoint and a half-written metrics line, then resumed with resume=."""
    cwd = tmp_path_factory.mktemp("resume")
    full = cli_process.run("meta-train", *RUN, "hydra.run.dir=full", cwd=cwd)
    assert full.returncode == 0, full.stderr
    killed = cwd / "killed"
    cli_process.kill_after_checkpoint("meta-train", *RUN, f"hydra.run.dir={killed}", cwd=cwd, run_dir=killed, step=2)
    ckpt = Checkpointer(killed / "checkpoints")
    last = ckpt.latest_step()
    ckpt.close()
    assert 2 <= last < 12
    half = killed / "checkpoints" / f"{last + 1}.orbax-checkpoint-tmp-1"  # a save cut short
    shutil.copytree(killed / "checkpoints" / str(last), half)
    (half / "commit_success.txt").unlink()
    with open(killed / "metrics.jsonl", "a") as f:
        f.write('{"outer_iteration": 99, "outer/lo')
    resumed = cli_process.run("meta-train", *RUN, f"resume={killed}", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr
    return cwd / "full", killed, last, resumed


def test_killed_and_resumed_run_equals_an_uninterrupted_one(runs):
    full, killed, last, resumed = runs
    assert f"from outer iteration {last}." in " ".join(resumed.stdout.split())
    for a, b in zip(theta_leaves(full), theta_leaves(killed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert records(killed / "metrics.jsonl") == records(full / "metrics.jsonl")  # no duplicated, lost or half-written records
    assert [r["outer_iteration"] for r in records(killed / "metrics.jsonl")] == list(range(1, 13))
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["11", "12"]  # partial save removed
    assert (killed / ".hydra").is_dir()  # resume= ran the job in the run directory


def _damage(step_dir, how):
    """Flip a byte in the middle of the largest data file of a checkpoint, or truncate it to half."""
    data = sorted(step_dir.rglob("ocdbt.process_0/d/*"), key=lambda p: -p.stat().st_size)[0]
    raw = bytearray(data.read_bytes())
    if how == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = raw[: len(raw) // 2]
    data.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(runs, tmp_path, capsys,
                                                                                         how):
    full = runs[0]
    run = shutil.copytree(full, tmp_path / "run")
    _damage(run / "checkpoints" / "12", how)
    meta_train.run(compose_meta_train(*RUN, f"resume={run}"), tmp_path / "unused", Console(quiet=True))
    warning = " ".join(capsys.readouterr().err.split())
    assert f"lopt: warning: The checkpoint {run / 'checkpoints' / '12'} " in warning
    assert f"Resuming from the checkpoint of iteration 11; the bad one is moved to {run / 'corrupt_checkpoints' / '12'}" \
        in warning
    for a, b in zip(theta_leaves(full), theta_leaves(run), strict=True):  # iteration 12 again, bitwise
        np.testing.assert_array_equal(a, b)
    assert records(run / "metrics.jsonl") == records(full / "metrics.jsonl")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["11", "12"]
    assert (run / "corrupt_checkpoints" / "12").is_dir()


def test_when_no_checkpoint_verifies_the_error_names_each_and_nothing_is_written(runs, tmp_path):
    run = shutil.copytree(runs[0], tmp_path / "run")
    _damage(run / "checkpoints" / "12", "flip")
    _damage(run / "checkpoints" / "11", "truncate")
    before = {p: p.read_bytes() for p in (run / "metrics.jsonl", run / "config.yaml")}
    cfg = compose_meta_train(*RUN, f"resume={run}")
    with pytest.raises(UserError, match=f"No checkpoint of {run} verifies.*checkpoint {run / 'checkpoints' / '12'} "
                                        f".*checkpoint {run / 'checkpoints' / '11'} .*Start a new run directory"):
        meta_train.run(cfg, tmp_path / "unused", Console(quiet=True))
    assert all(p.read_bytes() == b for p, b in before.items())
    assert not (tmp_path / "unused").exists() and not (run / "corrupt_checkpoints").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["11", "12"]


def test_changed_config_is_refused_naming_the_key(runs, tmp_path):
    run = shutil.copytree(runs[0], tmp_path / "run")
    with pytest.raises(UserError, match=r"config differs from .*config.yaml at estimator.std \(stored 0.01, now 0.5\)"):
        meta_train.run(compose_meta_train(*RUN, "estimator.std=0.5"), run, Console(quiet=True))
    with pytest.raises(UserError, match="outer_iterations=8 is below .* latest checkpoint"):
        meta_train.run(compose_meta_train(*RUN, "outer_iterations=8"), run, Console(quiet=True))
    with pytest.raises(UserError, match="is not a meta-train run directory"):
        meta_train.run(compose_meta_train(*RUN, f"resume={tmp_path / 'nope'}"), run, Console(quiet=True))


def test_config_check_allows_only_keys_that_do_not_change_the_numbers(tmp_path):
    stored = compose_meta_train(*RUN)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(stored, resolve=True))
    resume.check_config(tmp_path, compose_meta_train(*RUN, "outer_iterations=50", "log_every=5",
                                                     "checkpoint_every=0", "tracking.mode=offline", "resume=x"))
    for override in ("seed=1", "num_tasks=3", "task.hidden=[4]", "outer_opt.lr=1e-4"):
        with pytest.raises(UserError, match=override.split("=")[0].replace("[", "")):
            resume.check_config(tmp_path, compose_meta_train(*RUN, override))


def test_trim_records_drops_newer_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"outer_iteration": i, "x": i / 3}) + "\n" for i in range(1, 6)) + '{"outer_it')
    assert trim_records(path, "outer_iteration", 3) == {"outer_iteration": 3, "x": 1.0}
    assert [json.loads(line)["outer_iteration"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert trim_records(path, "outer_iteration", 0) is None and path.read_text() == ""
    assert trim_records(tmp_path / "missing.jsonl", "outer_iteration", 3) is None


def test_all_tasks_nonfinite_stops_with_a_usable_checkpoint(tmp_path):
    """A perturbation so large that every task diverges: the run stops at the first log point
    where the streak reaches the limit, and the checkpoint there holds the untouched initial theta.
    (small_fc_lopt: learnable_adam clips its hyperparameters, so it stays finite at any theta.)"""
    cfg = compose_meta_train(*TINY, "estimator.std=1e30", "max_nonfinite_iterations=2", "outer_iterations=6")
    with pytest.raises(UserError, match="stopped at outer iteration 2: .* non-finite for 2 consecutive"):
        meta_train.run(cfg, tmp_path, Console(quiet=True))
    c = meta_train.build(cfg)
    initial = c.trainer.init(jax.random.PRNGKey(c.settings.seed))
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 2
    state = ckpt.restore(2, initial)
    ckpt.close()
    assert int(state.iteration) == 2 and int(state.nonfinite_streak) == 2
    for a, b in zip(jax.tree_util.tree_leaves(state.theta), jax.tree_util.tree_leaves(initial.theta)):
        np.testing.assert_array_equal(a, b)
    assert [r["outer/nonfinite_streak"] for r in records(tmp_path / "metrics.jsonl")] == [1, 2]
    assert not (tmp_path / "final_theta").exists()


def test_a_resumed_run_continues_its_wandb_run(monkeypatch, tmp_path):
    import wandb

    from lopt.io.tracking import Tracker

    calls = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs))
    for _ in range(2):  # the run, then its resume in the same directory
        Tracker(tmp_path, {}, mode="offline", project="p", entity=None, group=None, job_type="meta-train",
                tags=[], console=Console(quiet=True)).finish()
    assert calls[0]["id"] == calls[1]["id"] == (tmp_path / "wandb_run_id").read_text()
    assert len(calls[0]["id"]) == 16 and calls[0]["resume"] == "allow"


def test_a_resumed_runs_wall_time_goes_on_from_its_last_record(runs):
    """time/wall_s (meta_training.png's time axis) never runs backwards across the resume."""
    _, killed, last, _ = runs
    walls = [json.loads(line)["time/wall_s"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert np.all(np.diff(walls) > 0) and walls[last] > walls[last - 1]


def test_sigterm_checkpoints_the_iteration_in_flight_and_the_requeued_run_ends_bitwise_equal(tmp_path):
    """A scheduler's SIGTERM mid-run: the run checkpoints where it is (no periodic checkpoint to fall
    back on), exits with 143, and the same command resumes it to the uninterrupted run's theta and metrics."""
    run = [*CHEAP, "outer_iterations=400", "checkpoint_every=1000"]
    full = cli_process.run("meta-train", *run, "hydra.run.dir=full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    proc = cli_process.start("meta-train", *run, "hydra.run.dir=cut", cwd=tmp_path, output=subprocess.PIPE)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 5):
        assert proc.poll() is None, "the run ended before the signal"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM
    stopped = int(re.search(r"Preempted \(SIGTERM at outer iteration (\d+)\)", " ".join(out.split())).group(1))
    assert 5 <= stopped < 400
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == [str(stopped)]
    assert max(r["outer_iteration"] for r in records(metrics)) >= stopped - 1  # flushed
    again = cli_process.run("meta-train", *run, "hydra.run.dir=cut", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"from outer iteration {stopped}." in " ".join(again.stdout.split())
    lopt_ = meta_train.build(compose_meta_train(*run)).trainer.lopt
    like = lopt_.init_theta(jax.random.PRNGKey(0))
    for a, b in zip(*(jax.tree_util.tree_leaves(load_tree(tmp_path / d / "final_theta", like)) for d in ("full", "cut"))):
        np.testing.assert_array_equal(a, b)
    assert records(metrics) == records(tmp_path / "full" / "metrics.jsonl")


def test_a_full_disk_at_a_checkpoint_stops_clearly_and_the_run_resumes_once_space_is_freed(runs, tmp_path,
                                                                                          monkeypatch):
    """Checkpoint 6 fails as orbax fails on a full disk: the run stops with one paragraph, keeps
    checkpoints 4 and 5 readable, and the same command (space freed) ends equal to the uninterrupted run."""
    from lopt.io import checkpoint
    from tests.io.test_disk import ORBAX

    full = runs[0]
    save = checkpoint.ocp.CheckpointManager.save

    def full_disk_at_6(self, step, *args, **kwargs):
        if step == 6:
            raise ValueError(ORBAX)
        return save(self, step, *args, **kwargs)

    run = tmp_path / "run"
    cfg = compose_meta_train(*RUN, f"hydra.run.dir={run}")
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.ocp.CheckpointManager, "save", full_disk_at_6)
        with pytest.raises(UserError, match=f"The disk is full: writing checkpoint 6 to {run / 'checkpoints'} failed "
                                            "\\(no space left on the device; it needed about 0.2 MB, "):
            meta_train.run(cfg, run, Console(quiet=True))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["4", "5"]
    meta_train.run(cfg, run, Console(quiet=True))  # space freed: the same command
    for a, b in zip(theta_leaves(full), theta_leaves(run), strict=True):
        np.testing.assert_array_equal(a, b)
    assert records(run / "metrics.jsonl") == records(full / "metrics.jsonl")
