"""scripts/reproduce_velo.py: its --quick path end to end at a tiny size (a meta-trained hypernetwork
evaluated untuned against tuned Adam and tuned NAdamW; the figure, the JSON and the verdict from
the evaluations' suite.json), and the verdict on fixed numbers."""
import json

import pytest

from tests.scripts import load_script

TINY = ["outer_iterations=2", "num_tasks=1", "schedule.low=10", "schedule.high=20", "family.mlp_family.num_variants=1",
        "family.quadratic_family.num_variants=1", "lopt.lstm_size=4", "data.source=synthetic",
        "data.synthetic_examples=64", "tracking.mode=disabled"]


def test_the_quick_path_writes_the_summary_from_its_evaluations(tmp_path, monkeypatch, capsys):
    script = load_script("reproduce_velo")
    monkeypatch.setattr(script, "SUITES", {True: ("smoke",)})
    out = tmp_path / "v"
    result = script.main(["--quick", "--out", str(out), *TINY])
    doc = json.loads((out / "velo.json").read_text())
    assert doc["outer_iterations"] == 2 and doc["lopt"] == "hypernet" and doc["suites"] == ["smoke"]
    assert (out / "velodrome.png").stat().st_size > 10_000
    assert (out / "meta" / "final_theta").is_dir()
    for baseline in ("adam", "nadamw"):
        suite = json.loads((out / f"smoke_vs_{baseline}" / "suite.json").read_text())
        assert set(doc["scores"][baseline]) == {f"smoke/{t}" for t in suite["tasks"]} == {"smoke/digits_mlp",
                                                                                         "smoke/quadratic"}
        for task, r in suite["tasks"].items():
            assert doc["scores"][baseline][f"smoke/{task}"]["speedup_over_adam"] == r["scores"]["speedup_over_adam"]
            assert "nadamw" in r["baseline"]["file"] if baseline == "nadamw" else "adam" in r["baseline"]["file"]
        wins = [s["beats_adam"] for s in doc["scores"][baseline].values()]
        assert doc["fraction_beating"][baseline] == pytest.approx(sum(wins) / len(wins))
    assert result["verdicts"] == doc["verdicts"] and doc["verdicts"][0]["figure"] == "VeLO §5 / VeLOdrome"
    assert doc["verdicts"][0]["reproduced"] == (doc["fraction_beating"]["adam"] == 1.0)
    assert "verdict (VeLO §5 / VeLOdrome)" in capsys.readouterr().out


def test_the_verdict_on_fixed_numbers():
    script = load_script("reproduce_velo")

    def scores(beats):
        return {t: {"beats_adam": b, "speedup_over_adam": 2.0 if b else 0.5} for t, b in beats.items()}

    v = script.verdict(scores({"a": True, "b": True}))
    assert v.reproduced and "on 2 of 2 tasks (100%: a, b)" in v.measured and "median speedup 2" in v.measured
    v = script.verdict(scores({"a": True, "b": False, "c": False}))
    assert not v.reproduced and "on 1 of 3 tasks (33%: a)" in v.measured



def test_a_given_theta_is_scored_without_meta_training(tmp_path, monkeypatch):
    script = load_script("reproduce_velo")
    monkeypatch.setattr(script, "SUITES", {True: ("smoke",)})
    out = tmp_path / "v"
    doc = script.main(["--quick", "--out", str(out), "--theta", "pretrained:generalize_offline", "--baselines",
                       str(tmp_path / "b"), "--horizon-mult", "2", "data.source=synthetic", "data.synthetic_examples=64",
                       "tracking.mode=disabled"])
    assert not (out / "meta").exists() and doc["preset"] is None and doc["outer_iterations"] is None
    assert doc["lopt"] == doc["theta"] == "pretrained:generalize_offline"
    suite = json.loads((out / "smoke_vs_adam" / "suite.json").read_text())
    assert suite["learned"] and "generalize_offline" in json.dumps(suite["checkpoint"])
    for r in suite["tasks"].values():  # the baselines asked for: their directory and horizon multiple
        assert r["baseline"]["file"].startswith(str(tmp_path / "b")) and r["baseline"]["horizon_mult"] == 2
    assert {k: v["speedup_over_adam"] for k, v in doc["scores"]["adam"].items()} == {
        f"smoke/{t}": r["scores"]["speedup_over_adam"] for t, r in suite["tasks"].items()}
