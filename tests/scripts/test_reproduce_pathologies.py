"""scripts/reproduce_pathologies.py: its --quick path end to end at a tiny size (every figure and
the JSON written with the documented keys, the numbers those of its runs), and each verdict's logic
on fixed numbers."""
import dataclasses
import json

import numpy as np
import pytest

from tests.scripts import load_script

TINY_DATA = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled"]


def test_the_quick_path_writes_every_figure_and_the_json_from_its_runs(tmp_path, monkeypatch, capsys):
    script = load_script("reproduce_pathologies")
    tiny = dataclasses.replace(
        script.QUICK, toy_momenta=100, toy_steps=(10, 200), length=10, truncations=(5, 10), problems=2, num_tasks=2,
        grid=(1e-3, 1e-2, 1e-1), sweep_seeds=2, gradient_trunc=5, variance_iterations=4, variance_end=60,
        ablation_iterations=2, ablation_tasks=2, ablation_end=60, ablation_fixed=(10,), ablation_seeds=1, eval_steps=10)
    monkeypatch.setattr(script, "QUICK", tiny)
    full = script.ablations(tiny)
    monkeypatch.setattr(script, "ablations", lambda scale: {k: full[k] for k in ("merged (full)", "no momentum")})
    out = tmp_path / "p"
    result = script.main(["--quick", "--out", str(out), *TINY_DATA])
    doc = json.loads((out / "pathologies.json").read_text())
    assert set(doc) >= {"paper", "quick", "scale", "overrides", "figures", "verdicts", "fig3", "fig4", "fig5a", "fig7"}
    assert doc["figures"] == ["fig3_two_minima.png", "fig4_truncation_bias.png", "fig5a_estimator_variance.png",
                              "fig7_ablation.png"]
    assert all((out / f).stat().st_size > 10_000 for f in doc["figures"])

    toy = doc["fig3"]
    assert np.asarray(toy["w"]).shape == (100, 200) and np.asarray(toy["final_loss"]).shape == (2, 100)
    w = np.asarray(toy["w"])  # momentum 0 at lr 0.02: plain gradient descent into the minimum at 0
    assert abs(w[0, -1]) < 1e-3 and toy["landscape"]["200"]["settled_at_0"] >= 1

    bias = doc["fig4"]
    sweep = json.loads((out / "fig4" / "sweep" / "sweep.json").read_text())
    assert {g["lr"] for g in bias["grid"]} == {c["hyperparameters"]["lr"] for c in sweep["configurations"]}
    assert bias["grid_best_lr"] == sweep["configurations"][0]["hyperparameters"]["lr"]
    for n, run in bias["runs"].items():  # the same total inner steps: problems x length / truncation
        assert run["outer_iterations"] == 2 * 10 // int(n)
        records = [json.loads(x) for x in (out / "fig4" / f"trunc_{n}" / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["outer_iteration"] == run["outer_iterations"]
        assert run["learned_lr"] != pytest.approx(1e-3, rel=1e-6)  # meta-training moved it
    grads = bias["gradients"]
    assert grads["steps"] == [5, 10] and grads["lr"] == bias["grid_best_lr"]
    assert grads["cumulative"] == pytest.approx(np.cumsum(grads["per_truncation"]).tolist())

    var = doc["fig5a"]
    assert var["outer_iteration"] and len(var["rp_variance"]) == len(var["es_variance"]) == len(var["outer_iteration"])
    assert all(v >= 0 for v in var["rp_variance"] + var["es_variance"])

    abl = doc["fig7"]
    assert set(abl["configurations"]) == {"merged (full)", "no momentum"}
    assert all(len(c["final_eval_mean_loss"]) == 1 for c in abl["configurations"].values())
    assert [v["figure"] for v in doc["verdicts"]] == ["Fig. 3c", "Fig. 4a", "Fig. 5a"]  # fig7: too few configs
    printed = capsys.readouterr().out
    assert all(f"verdict ({v['figure']})" in printed for v in doc["verdicts"])
    assert result["verdicts"] == doc["verdicts"]


def test_bad_parts_are_refused_naming_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        load_script("reproduce_pathologies").main(["--parts", "fig3,fig9", "--out", str(tmp_path / "p")])
    assert err.value.code == 2
    assert "unknown ['fig9']; valid parts: fig3, fig4, fig5a, fig7" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_verdicts_on_fixed_numbers():
    script = load_script("reproduce_pathologies")
    toy = {"steps": [10, 1000], "momenta": [0.0, 0.001], "minima_gap": 3.12,
           "landscape": {"10": {"jumps": 0}, "1000": {"jumps": 5}}}
    assert script.landscape_verdict(toy).reproduced
    toy["landscape"]["1000"]["jumps"] = 0
    assert not script.landscape_verdict(toy).reproduced

    bias = {"grid_best_lr": 0.01, "runs": {"5": {"learned_lr": 0.001}, "200": {"learned_lr": 0.008}}}
    v = script.bias_verdict(bias)
    assert v.reproduced and "1.00 decades off" in v.measured
    bias["runs"]["5"]["learned_lr"] = 0.0095
    assert not script.bias_verdict(bias).reproduced

    var = {"rp_variance": [1e-6] * 10 + [10.0] * 10, "es_variance": [1.0] * 20}
    v = script.variance_verdict(var)
    assert v.reproduced and "1e-06" in v.measured and "10 in the last" in v.measured
    var["rp_variance"] = [1e-6] * 10 + [0.5] * 10  # grows, but stays below ES
    assert not script.variance_verdict(var).reproduced

    def configs(values):
        return {"configurations": {n: {"final_eval_mean_loss": [v, v + 0.02]} for n, v in values.items()}}

    good = {"merged (full)": 0.1, "backprop only": 0.12, "ES only": 1.0, "fixed length 50": 0.2,
            "no momentum": 0.5, "no RMS": 0.15, "only grads": 0.4, "no time": 0.12}
    assert [v.reproduced for v in script.ablation_verdicts(configs(good))] == [True, True, True]
    bad = {**good, "backprop only": 0.05, "fixed length 50": 0.09, "no time": 0.9}
    assert [v.reproduced for v in script.ablation_verdicts(configs(bad))] == [False, False, False]
