"""A two-process `lopt meta-train` (two JAX processes of 2 CPU devices each, joined on localhost, as
`srun` would launch them) writes each result once: process 0 writes config.yaml, metrics.jsonl,
final_theta/ and the W&B run; checkpoints are collective; the other process writes nothing. When
one process is lost, the other stops with lopt's paragraph and a relaunch resumes bitwise."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from lopt.io.checkpoint import load_tree
from lopt.learned import LearnableAdam
from tests.conftest import records

ROOT = Path(__file__).resolve().parents[2]
RUN = ["task=quadratic", "lopt=learnable_adam", "num_tasks=4", "estimator.trunc_length=3", "schedule.length=7",
       "outer_iterations=4", "log_every=1", "checkpoint_every=2", "tracking.mode=offline"]


def _launch(tmp_path, run_dir, overrides):
    """The two processes of `lopt meta-train *overrides`, joined on a free localhost port, each in
    its own session (so a test can kill one task whole, supervisor and all)."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join(sys.path), WANDB_DIR=str(tmp_path / "wandb-home"))
    return [subprocess.Popen(
        [sys.executable, "-m", "lopt_cli.main", "meta-train", *overrides, f"hydra.run.dir={run_dir}",
         f"distributed.coordinator_address=localhost:{port}", "distributed.num_processes=2",
         f"distributed.process_id={i}"], cwd=tmp_path, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]


def test_two_processes_write_one_copy_of_each_result(tmp_path):
    run_dir = tmp_path / "run"
    procs = _launch(tmp_path, run_dir, RUN)
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["outer_iteration"] for r in records] == [1, 2, 3, 4]  # one record per iteration: one writer
    assert (run_dir / "config.yaml").is_file() and (run_dir / "final_theta").is_dir()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1, wandb_runs
    assert not list(tmp_path.glob("outputs")) and not list(tmp_path.glob("**/.*.tmp"))


@pytest.mark.slow  # three two-process runs, one waiting out a heartbeat timeout: about a minute
@pytest.mark.parametrize("lost", [1, 0])  # a worker, and process 0 (the coordinator)
def test_a_lost_process_stops_the_other_with_a_paragraph_and_the_relaunch_resumes_bitwise(tmp_path, lost):
    run = [*RUN, "outer_iterations=300", "checkpoint_every=20", "tracking.mode=disabled",
           "distributed.heartbeat_timeout_s=5"]
    for p in _launch(tmp_path, tmp_path / "full", run):
        assert p.wait(timeout=600) == 0
    procs = _launch(tmp_path, tmp_path / "cut", run)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 50):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    os.killpg(procs[lost].pid, signal.SIGKILL)  # the task, supervisor and all: a lost host
    start = time.perf_counter()
    _, err = procs[1 - lost].communicate(timeout=120)
    assert procs[1 - lost].returncode == 2 and time.perf_counter() - start < 60
    assert "lopt: error: This process of a multi-process run was stopped by JAX's distributed service" in err
    for p in _launch(tmp_path, tmp_path / "cut", run):
        assert p.wait(timeout=600) == 0, p.communicate()[1][-2000:]
    like = LearnableAdam().init_theta(jax.random.PRNGKey(0))
    for a, b in zip(*(jax.tree_util.tree_leaves(load_tree(tmp_path / d / "final_theta", like)) for d in ("full", "cut"))):
        np.testing.assert_array_equal(a, b)
    assert records(metrics) == records(tmp_path / "full" / "metrics.jsonl")
