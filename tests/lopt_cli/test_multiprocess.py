"""A two-process `lopt meta-train` (two JAX processes of 2 CPU devices each, joined on localhost, as
`srun` would launch them) writes each result once: process 0 writes config.yaml, metrics.jsonl,
final_theta/ and the W&B run; checkpoints are collective; the other process writes nothing."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ["task=quadratic", "lopt=learnable_adam", "num_tasks=4", "estimator.trunc_length=3", "schedule.length=7",
       "outer_iterations=4", "log_every=1", "checkpoint_every=2", "tracking.mode=offline"]


def test_two_processes_write_one_copy_of_each_result(tmp_path):
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join(sys.path), WANDB_DIR=str(tmp_path / "wandb-home"))
    run_dir = tmp_path / "run"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "lopt_cli.main", "meta-train", *RUN, f"hydra.run.dir={run_dir}",
         f"distributed.coordinator_address=localhost:{port}", "distributed.num_processes=2",
         f"distributed.process_id={i}"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
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
