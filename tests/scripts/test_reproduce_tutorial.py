"""scripts/reproduce_tutorial.py end to end at toy scale: three lopt runs, figures and a verdict."""
import json

import pytest

from tests.scripts import load_script


def test_tutorial_pipeline_runs_offline_and_its_verdict_matches_its_numbers(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    load_script("reproduce_tutorial").main(
        ["--quick", "--out", str(tmp_path / "t"), "--outer-iterations", "3", "--num-tasks", "2", "--num-steps", "10",
         "--trunc-length", "5", "--num-seeds", "2", "data.source=synthetic", "data.synthetic_examples=64",
         "task.hidden=[8]", "tracking.mode=disabled"])
    result = json.loads((tmp_path / "t" / "tutorial.json").read_text())
    assert result["task"] == "digits_mlp" and result["outer_iterations"] == 3
    sizes = (result["preset"], result["num_tasks"], result["trunc_length"], result["num_steps"])
    assert sizes == ("quick_offline", 2, 5, 10)
    meta_overrides = (tmp_path / "t" / "meta" / ".hydra" / "overrides.yaml").read_text()
    assert "+experiment=quick_offline" in meta_overrides and "- task=" not in meta_overrides  # the preset names the task
    best = json.loads((tmp_path / "t" / "sweep" / "best.json").read_text())["configuration"]
    assert result["adam"]["mean_loss"] == pytest.approx(best["metrics"]["mean/eval/train/loss"]["mean"], rel=1e-6)
    assert result["learned_wins"] == (result["learned"]["mean_loss"] < result["adam"]["mean_loss"])
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert verdict.startswith("verdict: on digits_mlp") and ("BEATS" in verdict) == result["learned_wins"]
    assert f"{result['learned']['mean_loss']:.4f} vs {result['adam']['mean_loss']:.4f}" in verdict
    for figure in result["figures"]:
        assert (tmp_path / "t" / figure).stat().st_size > 0
