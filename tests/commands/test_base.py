"""The command skeleton: settings from dataclass fields, components handed to the job or built by it, the
tracker finished with the job's exit status, and writes made by process 0 only."""
import pickle
from contextlib import nullcontext

import pytest
from rich.console import Console

from lopt.commands import base, evaluate
from lopt.errors import ConfigError, UserError
from lopt.io.results import pyplot
from lopt_cli.job import Job
from tests.conftest import compose

TINY = ["num_seeds=2", "num_steps=10", "eval_every=5", "tracking.mode=disabled", "data.source=synthetic"]


def test_settings_are_the_top_level_keys_that_are_not_groups():
    s = base.settings(evaluate.Settings, compose("evaluate", *TINY))
    assert (s.num_seeds, s.num_steps, s.theta, s.compare_to) == (2, 10, None, None)
    with pytest.raises(ConfigError, match="Unknown key bogus. Valid keys: baselines, compare_to, eval_batches"):
        base.settings(evaluate.Settings, {**compose("evaluate", *TINY), "bogus": 1})


def test_a_job_takes_the_components_built_for_its_config_and_builds_otherwise(tmp_path):
    """What the CLI built while validating a config is handed to the job that runs it (and only
    to that job, once); a job without any builds its own. The config is read-only once prepared."""
    calls = []

    def build(cfg):
        calls.append(cfg)
        return evaluate.build(cfg)

    cfg = compose("evaluate", *TINY)
    built = build(cfg)
    _, c = base.prepare(build, cfg, tmp_path / "run", Console(quiet=True), built)
    assert c is built and len(calls) == 1
    _, c = base.prepare(build, compose("evaluate", *TINY), tmp_path / "run", Console(quiet=True))
    assert c is not built and len(calls) == 2
    with pytest.raises(Exception, match="read-only"):
        cfg.seed = 1
    job = Job("evaluate", "lopt.commands.evaluate", {base.config_key(cfg): built})
    assert pickle.loads(pickle.dumps(job)) == job and pickle.loads(pickle.dumps(job)).built == {}


class _Recorder:
    status = "W&B: disabled (a test tracker)"

    def __init__(self):
        self.codes = []

    def log(self, record, step):
        pass

    def summary(self, values):
        pass

    def finish(self, exit_code=0):
        self.codes.append(exit_code)


def _job(tmp_path, monkeypatch):
    cfg = compose("evaluate", *TINY)
    c = evaluate.build(cfg)
    recorder = _Recorder()
    monkeypatch.setattr(type(c.shared.tracking), "open", lambda *args, **kwargs: recorder)
    return base.Job(cfg, tmp_path / "run", Console(quiet=True), c.shared), recorder


@pytest.mark.parametrize("raised, code", [(None, 0), (UserError("bad"), 1), (KeyboardInterrupt(), 130)])
def test_the_tracker_finishes_with_the_exit_status(tmp_path, monkeypatch, raised, code):
    job, recorder = _job(tmp_path, monkeypatch)
    job.write_config()
    with pytest.raises(type(raised)) if raised is not None else nullcontext():
        with job.tracker("evaluate"):
            if raised is not None:
                raise raised
    assert recorder.codes == [code]


def test_only_process_0_writes(tmp_path, monkeypatch):
    job, recorder = _job(tmp_path, monkeypatch)
    job.main = False
    job.write_config()
    job.write_json("result.json", {"a": 1})
    job.save_figure(pyplot().figure(), "figure.png")
    with job.tracker("evaluate") as tracker:
        tracker.log({"a": 1.0}, step=0)
    assert not (tmp_path / "run").exists() and recorder.codes == []
    job.main = True
    job.write_config()
    job.write_json("result.json", {"a": 1})
    job.save_figure(pyplot().figure(), "figure.png")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "figure.png", "result.json"]
