import json

from rich.console import Console

from lopt import tracking
from lopt.tracking import Tracker


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
