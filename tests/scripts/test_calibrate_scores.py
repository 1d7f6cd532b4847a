"""scripts/calibrate_scores.py: its --quick path end to end at a tiny size (baselines, then the
tuned optimizer evaluated against them on fresh seeds; calibration.json and the printed line from
the evaluation's suite.json), and the tolerance checks on fixed numbers."""
import json

from tests.scripts import load_script

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_seeds=2",
        "suite.tasks.digits_mlp.num_steps=30", "suite.tasks.quadratic.num_steps=20", "suite.lr_range=[1e-2,1]",
        "baselines.horizon_mult=3"]


def test_the_quick_path_scores_tuned_adam_against_its_own_baselines(tmp_path, capsys):
    script = load_script("calibrate_scores")
    out = tmp_path / "c"
    result = script.main(["--quick", "--suite", "smoke", "--out", str(out), *TINY])
    doc = json.loads((out / "calibration.json").read_text())
    assert doc["suite"] == "smoke" and list(doc["references"]) == ["adam"]
    adam = doc["references"]["adam"]
    suite = json.loads((out / "evaluate_adam" / "suite.json").read_text())
    assert suite["label"] == "adam (tuned per task: grid search)" and suite["num_seeds"] == 2
    assert adam["aggregates"]["speedup_over_adam"] == suite["aggregates"]["speedup_over_adam"]
    assert adam["horizon_mult"] == [3] and set(adam["per_task"]) == {"digits_mlp", "quadratic"}
    assert adam["within"] == all(adam["checks"].values()) and doc["within"] == adam["within"]
    assert result["references"]["adam"]["line"] == adam["line"]
    assert adam["line"] in capsys.readouterr().out
    assert len(list((out / "baselines").glob("*.adam.*.json"))) == 2
    again = script.main(["--quick", "--suite", "smoke", "--out", str(tmp_path / "again"), "--baselines",
                         str(out / "baselines"), *TINY])  # the same baselines, no sweep
    assert list(again["wall_s"]) == ["evaluate_adam"] and not (tmp_path / "again" / "baselines").exists()
    assert again["references"]["adam"]["aggregates"] == adam["aggregates"]  # the same seeds and baselines


def stat(value, low, high):
    return {"value": value, "ci": None if low is None else [low, high]}


def agg(speedup, ratio, win):
    return {"speedup_over_adam": {"iqm": stat(*speedup)}, "loss_ratio": {"iqm": stat(*ratio)},
            "win_fraction": stat(*win)}


def test_the_tolerances_on_fixed_numbers():
    script = load_script("calibrate_scores")
    calibrated = agg((1.01, 0.97, 1.05), (0.99, 0.94, 1.03), (0.55, 0.36, 0.73))
    assert all(script.check(calibrated).values())
    assert "within tolerance" in script.line("adam", calibrated, script.check(calibrated))
    biased = agg((0.93, 0.90, 0.97), (1.05, 1.01, 1.09), (0.2, 0.09, 0.36))
    checks = script.check(biased)
    assert not any(checks.values())
    assert "OUT OF tolerance (iqm_speedup_in_band, speedup_interval_covers_1" in script.line("adam", biased, checks)
    # in the band, but the interval misses 1: still out
    assert script.check(agg((1.04, 1.01, 1.08), (0.99, 0.9, 1.1), (0.5, 0.3, 0.7)))["speedup_interval_covers_1"] is False
    assert script.check(agg((1.0, None, None), (1.0, None, None), (0.5, None, None)))["speedup_interval_covers_1"] is False
