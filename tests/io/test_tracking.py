import json
from contextlib import nullcontext

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from lopt.commands import base
from lopt.io import tracking
from lopt.io.tracking import Tracker


def _tracker(tmp_path, mode):
    return Tracker(tmp_path, {"a": 1}, mode=mode, project="lopt-test", entity=None, group="g",
                   job_type="meta-train", tags=[], console=Console(file=open(tmp_path / "console.txt", "w")))


def test_auto_mode_is_offline_without_an_api_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert tracking.resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.resolve_mode("auto") == "online"


def test_offline_run_logs_locally_and_to_a_wandb_offline_run(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    t = _tracker(tmp_path, "offline")
    t.log({"outer/loss": 1.5, "bad": float("nan")}, step=1)
    t.finish()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"outer/loss": 1.5, "bad": "nan"}
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_a_wandb_failure_never_stops_logging(monkeypatch, tmp_path):
    import wandb

    def broken(**kwargs):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken)
    t = _tracker(tmp_path, "online")
    t.log({"x": 2.0}, step=1)
    t.finish()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"x": 2.0}
    assert "wandb is down" in (tmp_path / "console.txt").read_text()


def test_a_table_goes_to_the_wandb_run(monkeypatch, tmp_path):
    import wandb

    class FakeRun:
        logged = []

        def log(self, record, step=None):
            self.logged.append(record)

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun())
    t = _tracker(tmp_path, "online")
    t.table("configurations", ["lr", "loss"], [[0.1, 1.5], [1.0, None]])
    (record,) = FakeRun.logged
    table = record["configurations"]
    assert isinstance(table, wandb.Table) and table.columns == ["lr", "loss"] and table.data == [[0.1, 1.5], [1.0, None]]


def test_multirun_jobs_are_separate_wandb_runs_in_one_group_finished_with_their_status(monkeypatch, tmp_path):
    import wandb

    runs = []

    class FakeRun:
        def __init__(self, **kwargs):
            self.init, self.exit_code = kwargs, None
            runs.append(self)

        def finish(self, exit_code=None):
            self.exit_code = exit_code

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun(**kwargs))
    sweep = tmp_path / "multirun" / "meta-train" / "2026-01-01" / "12-00-00_abc123"
    # in a Hydra multirun job the group is the sweep directory, as configured (the real one is
    # checked by tests/lopt_cli/test_launchers.py)
    monkeypatch.setattr(base, "multirun_group", lambda: "multirun/meta-train/2026-01-01/12-00-00_abc123")
    for job, fails in (("0", False), ("1", True)):
        cfg = OmegaConf.create({"seed": int(job), "data": {"source": "synthetic"},
                                "tracking": {"mode": "offline", "project": "p", "group": None}})
        j = base.Job(cfg, sweep / job, Console(file=open(tmp_path / "console.txt", "w")), base.Shared.parse(cfg))
        j.write_config()
        with pytest.raises(RuntimeError) if fails else nullcontext():
            with j.tracker("meta-train"):
                if fails:
                    raise RuntimeError("the job failed")
    group = runs[0].init["group"]
    assert [r.init["group"] for r in runs] == [group, group] and group.endswith("12-00-00_abc123")
    assert [OmegaConf.load(sweep / job / "config.yaml").tracking.group for job in "01"] == [group, group]
    assert [r.init["name"] for r in runs] == ["12-00-00_abc123/0", "12-00-00_abc123/1"]
    assert [r.init["job_type"] for r in runs] == ["meta-train", "meta-train"]
    assert runs[0].init["id"] != runs[1].init["id"]
    assert [r.exit_code for r in runs] == [0, 1]  # a job that raised is finished as failed


def test_a_single_run_is_named_after_its_directory(tmp_path):
    assert tracking.run_name(tmp_path / "outputs" / "meta-train" / "2026-01-01" / "12-00-00_abc123") == "12-00-00_abc123"


def _job(tmp_path, mode):
    tmp_path.mkdir(exist_ok=True)
    cfg = OmegaConf.create({"seed": 0, "data": {"source": "synthetic"},
                            "tracking": {"mode": mode, "project": "lopt-test", "group": None}})
    console = Console(file=open(tmp_path / "console.txt", "w"), width=80)
    return base.Job(cfg, tmp_path / "run", console, base.Shared.parse(cfg))


def test_the_tracker_says_where_wandb_logs_and_the_summary_rows_list_it(monkeypatch, tmp_path):
    import os
    from pathlib import Path

    for name in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: auto is offline
    job = _job(tmp_path, "auto")
    job.write_config()
    with job.tracker("meta-train") as tracker:
        status = tracker.status
        rows = job.wrote("config.yaml, metrics.jsonl")
    assert status.startswith("W&B: offline (no API key configured); upload later with: wandb sync ")
    sync_dir = status.rsplit(" ", 1)[1]
    assert sync_dir.startswith(str((tmp_path / "run" / "wandb" / "offline-run-").absolute()))
    assert Path(sync_dir).is_dir()
    assert rows == {"wrote": "config.yaml, metrics.jsonl, wandb/", "wandb": status}
    assert status in (tmp_path / "console.txt").read_text().splitlines()  # printed whole, on one line

    disabled = _job(tmp_path / "d", "disabled")
    disabled.write_config()
    with disabled.tracker("evaluate"):
        pass
    assert disabled.wrote("config.yaml") == {"wrote": "config.yaml", "wandb": "W&B: disabled (tracking.mode=disabled)"}


def test_the_status_names_an_online_run_and_a_wandb_failure(monkeypatch, tmp_path):
    import wandb

    class FakeRun:
        project, url = "lopt-test", "https://wandb.ai/me/lopt-test/runs/abc"

        def log(self, record, step=None):
            raise RuntimeError("network is down")

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun())
    t = _tracker(tmp_path, "online")
    assert t.status == "W&B: online, project lopt-test, run https://wandb.ai/me/lopt-test/runs/abc"
    t.log({"x": 1.0}, step=1)
    assert t.status.startswith("W&B: off for this run after an error (RuntimeError: network is down)")
    assert tracking.NullTracker.status == "W&B: logged by process 0"
