"""Where a run's results went, readable in a log file or on an 80-column terminal: the run
directory in full on its own line at the start and the end (a multirun job's number, overrides
and directory), and where W&B logged, with the command that uploads an offline run."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests import cli_process

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "num_tasks=2", "estimator.trunc_length=2",
        "schedule.length=6", "log_every=1", "checkpoint_every=2", "task.hidden=[8]", "lopt=learnable_adam"]


def lopt(*args, cwd):
    """`lopt` on an 80-column terminal with no W&B settings in the environment (WANDB_DIR unset:
    W&B writes into the run directory; offline needs no network)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(COLUMNS="80", HOME=str(cwd))  # HOME: no ~/.netrc, no user W&B settings
    return cli_process.run(*args, cwd=cwd, env=env)


def _deep(tmp_path: Path) -> Path:
    cwd = tmp_path / "a-directory-name-long-enough" / "that-every-run-directory-is-wider-than-80-columns"
    cwd.mkdir(parents=True)
    return cwd


def _summary_rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows: key -> the fragments its value is folded into."""
    rows: dict[str, list[str]] = {}
    key = None
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 4:
            key = cells[1] or key
            rows.setdefault(key, []).append(cells[2])
    return rows


def test_a_run_prints_its_directory_and_wandb_sync_command_in_full(tmp_path):
    cwd = _deep(tmp_path)
    out = lopt("meta-train", *TINY, "outer_iterations=2", "tracking.mode=offline", cwd=cwd)
    assert out.returncode == 0, out.stderr
    (run,) = (cwd / "outputs" / "meta-train").glob("*/*")
    assert len(str(run)) > 80
    lines = out.stdout.splitlines()
    assert lines[0] == f"run directory: {run}" and lines[-1] == f"run directory: {run}"
    assert "…" not in out.stdout  # nothing cut with an ellipsis
    rows = _summary_rows(out.stdout)
    assert "".join(rows["run_dir"]) == str(run)  # folded in the table, never cut
    assert " ".join(rows["wrote"]).endswith("final_theta/, wandb/")

    # W&B: said at the start and at the end, one line each, with the sync command of a path that exists
    status = [line for line in lines if line.startswith("W&B: ")]
    assert len(status) == 2 and status[0] == status[1]
    assert status[0].startswith("W&B: offline (tracking.mode=offline); upload later with: wandb sync ")
    sync_dir = Path(status[0].rsplit(" ", 1)[1])
    assert sync_dir.is_dir() and sync_dir.parent == run / "wandb" and sync_dir.name.startswith("offline-run-")
    assert "".join(rows["wandb"]).replace(" ", "") == status[0].replace(" ", "")


def test_each_multirun_job_prints_its_number_overrides_and_directory(tmp_path):
    """Each job runs in a run directory of its own with its own overrides (the seeds give different
    losses), and prints its number, overrides and directory at its start and end."""
    cwd = _deep(tmp_path)
    out = lopt("meta-train", "--multirun", *TINY, "outer_iterations=1", "tracking.mode=disabled", "seed=0,1", cwd=cwd)
    assert out.returncode == 0, out.stderr
    (sweep,) = (cwd / "multirun" / "meta-train").glob("*/*")
    assert len(list(sweep.glob("*/metrics.jsonl"))) == 2
    losses = [json.loads((sweep / str(job) / "metrics.jsonl").read_text().splitlines()[-1])["outer/loss"]
              for job in (0, 1)]
    assert losses[0] != losses[1]
    lines = out.stdout.splitlines()
    for job in (0, 1):
        run = sweep / str(job)
        assert (run / "metrics.jsonl").exists() and len(str(run)) > 80
        mine = [line for line in lines if line.startswith(f"job {job} (") and line.endswith(f"): {run}")]
        assert len(mine) == 2, out.stdout  # at its start and after its summary
        overrides = re.fullmatch(rf"job {job} \((.*)\): .*", mine[0]).group(1).split()
        assert f"seed={job}" in overrides and "lopt=learnable_adam" in overrides
    assert lines.count("W&B: disabled (tracking.mode=disabled)") == 4  # per job: at its start and end


def test_a_second_process_into_a_live_run_directory_is_refused_and_writes_nothing(tmp_path):
    """A job typed twice (or requeued beside the live one): the second exits 2 at once naming the
    first, and Hydra's record of the first run's command is untouched."""
    first = cli_process.start("meta-train", *TINY, "outer_iterations=1000000", "tracking.mode=disabled",
                              "hydra.run.dir=run", cwd=tmp_path, output=subprocess.DEVNULL)
    lock = tmp_path / "run" / ".lopt.lock"
    try:
        while not (lock.is_file() and lock.read_text()):
            assert first.poll() is None, "the first run ended before it could be joined"
            time.sleep(0.2)
        record = (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text()
        for command in (["meta-train", *TINY, "seed=5"], ["evaluate", "task.hidden=[8]"]):
            second = cli_process.run(*command, "tracking.mode=disabled", "hydra.run.dir=run", cwd=tmp_path)
            assert second.returncode == 2
            said = " ".join(second.stderr.split())
            assert f"Another lopt process is writing into {tmp_path / 'run'}: `lopt meta-train" in said
            assert f"(pid {first.pid} on host" in said and "Traceback" not in said
        assert (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text() == record
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
