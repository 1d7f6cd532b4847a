"""scripts/reproduce_tradeoffs.py: its --quick path end to end at a tiny size (hand-designed sweeps and
evaluations, meta-trainings with in-run evaluation on both tasks, the step timings; the figures,
the JSON and the verdicts from them), and the verdict logic on fixed numbers."""
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lopt import tasks
from lopt.evaluation.suite import Suite, SuiteTask
from tests.scripts import load_script

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled"]
SHIPPED = "pretrained:generalize_offline"


def test_the_quick_path_writes_the_figures_and_verdicts_from_its_runs(tmp_path, monkeypatch, capsys):
    script = load_script("reproduce_tradeoffs")
    monkeypatch.setattr(script, "QUICK", script.Scale(("small_fc_lopt",), outer_iterations=2, num_tasks=1,
                                                      eval_every=1, hidden_sizes=(2,), step_mult=0.01, seeds=1, sweep_seeds=1,
                                                      cost_steps=2, cost_rounds=1))
    monkeypatch.setattr(script, "HAND", ("sgd", "adam"))
    monkeypatch.setattr(script, "LONGER", ("adam",))
    monkeypatch.setattr(script, "MULTIPLES", (2,))
    out = tmp_path / "t"
    result = script.main(["--quick", "--suite", "smoke", "--out", str(out), "--pretrained",
                          SHIPPED.removeprefix("pretrained:"), *TINY])
    doc = json.loads((out / "tradeoffs.json").read_text())
    assert doc["verdicts"] == result["verdicts"] and len(doc["verdicts"]) == 4
    for name in doc["figures"]:
        assert (out / name).stat().st_size > 10_000
    tasks = ["digits_mlp", "quadratic"]
    assert list(doc["tasks"]) == tasks and doc["tasks"]["digits_mlp"]["num_steps"] == 60
    # hand-designed: the tuned rate from each sweep, the mean loss from the evaluation on its seeds
    assert set(doc["hand_designed"]) == {"sgd", "adam", "adam_2x"}
    for h in doc["hand_designed"].values():
        job = Path(h["run_dir"])
        assert job.parent == out / "hand" / f"evaluate_x{h['multiple']}"
        assert OmegaConf.load(job / "config.yaml").optimizer.name == h["optimizer"]
        sweep = json.loads((out / "hand" / f"sweep_x{h['multiple']}" / job.name / "baselines.json").read_text())
        assert sweep["optimizer"] == h["optimizer"]
        assert {t["task"]: t["best_lr"] for t in sweep["tasks"]} == {t: h[t]["lr"] for t in tasks}
        suite = json.loads((Path(h["run_dir"]) / "suite.json").read_text())
        for t in tasks:
            assert h[t]["mean_loss"] == suite["tasks"][t]["scores"]["mean_loss"]
            assert suite["tasks"][t]["num_steps"] == {"digits_mlp": 60, "quadratic": 40}[t] * h["multiple"]
    # meta-training: one run per (task, architecture) and the width on the first task, each evaluated on both tasks
    assert set(doc["meta_train"]["digits_mlp"]) == {"small_fc_lopt", "small_fc_lopt h=2"}
    assert set(doc["meta_train"]["quadratic"]) == {"small_fc_lopt"}
    run = doc["meta_train"]["quadratic"]["small_fc_lopt"]
    assert run["trajectory"]["iteration"] == [1, 2] and len(run["trajectory"]["digits_mlp"]) == 2
    assert "lopt.step_mult=0.01" in run["overrides"]
    # costs: every optimizer timed on both tasks; Fig. 1's points use them (2x: twice Adam's step)
    for t in tasks:
        cost = doc["cost"][t]
        assert set(cost) == {"sgd", "adam", "small_fc_lopt", "small_fc_lopt h=2", SHIPPED}
        assert cost["sgd"]["over_sgd"] == 1.0
        pts = doc["fig1"][t]["points"]
        assert pts["adam_2x"]["step_ms"] == pytest.approx(2 * cost["adam"]["step_ms"])
        assert pts["small_fc_lopt"]["meta_loss"] == doc["meta_train"][t]["small_fc_lopt"]["trajectory"][t][-1]
        assert "small_fc_lopt h=2" not in pts
        assert set(doc["fig1"][t]["front"]) == {"step_ms", "memory_bytes"}
        # the shipped optimizer, meta-trained on neither task: its evaluation's mean loss, in Fig. 1 and 6a/b
        evaluated = json.loads((out / "pretrained" / "generalize_offline" / "suite.json").read_text())
        assert doc["pretrained"][SHIPPED][t]["mean_loss"] == evaluated["tasks"][t]["scores"]["mean_loss"]
        assert pts[SHIPPED]["meta_loss"] == doc["pretrained"][SHIPPED][t]["mean_loss"] and pts[SHIPPED]["learned"]
        assert doc["fig6"][t]["final"][SHIPPED] == {k: doc["pretrained"][SHIPPED][k]["mean_loss"] for k in tasks}
    assert set(doc["fig3"]["widths"]) == {"2", "4"}
    assert doc["fig6"]["quadratic"]["held_out"] == "digits_mlp"
    printed = capsys.readouterr().out
    assert "Table 1 (digits_mlp" in printed and "verdict (Fig. 6c/d)" in printed
    assert f"{SHIPPED} on quadratic (meta-trained on neither task)" in printed


def test_an_unknown_pretrained_optimizer_is_a_usage_error(tmp_path, capsys):
    script = load_script("reproduce_tradeoffs")
    with pytest.raises(SystemExit) as e:
        script.main(["--quick", "--suite", "smoke", "--pretrained", "nope", "--out", str(tmp_path / "t"), *TINY])
    assert e.value.code == 2 and "--pretrained nope: the shipped optimizers are generalize_offline" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_the_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    script = load_script("reproduce_tradeoffs")
    pts = {"cheap_bad": {"step_ms": 1.0, "meta_loss": 1.0}, "dear_good": {"step_ms": 5.0, "meta_loss": 0.1},
           "dominated": {"step_ms": 2.0, "meta_loss": 1.5}, "tie_cost_worse": {"step_ms": 1.0, "meta_loss": 1.2},
           "middle": {"step_ms": 3.0, "meta_loss": 0.5}, "nan": {"step_ms": 0.5, "meta_loss": float("nan")}}
    assert script.pareto_front(pts, "step_ms") == ["cheap_bad", "middle", "dear_good"]


def test_c_shape_needs_a_late_held_out_loss_given_back_while_training_improves():
    script = load_script("reproduce_tradeoffs")
    its = [1, 2, 3, 4, 5]
    trained = [2.0, 1.0, 0.5, 0.3, 0.2]
    c = script.c_shape(trained, [2.0, 1.0, 0.8, 1.2, 1.5], its)  # best 0.8 at 3; 0.7 of its 1.2 given back
    assert c["c_shaped"] and c["held_out_best_iteration"] == 3 and c["given_back"] == pytest.approx(0.7 / 1.2)
    assert not script.c_shape(trained, [2.0, 1.0, 0.8, 0.7, 0.6], its)["c_shaped"]  # still improving
    assert not script.c_shape(trained, [2.0, 1.0, 0.8, 0.85, 0.9], its)["c_shaped"]  # 8% given back
    assert not script.c_shape([2.0, 1.0, 0.5, 0.6, 0.7], [2.0, 1.0, 0.8, 1.2, 1.5], its)["c_shaped"]  # both worse
    assert not script.c_shape(trained[:2], [2.0, 1.0], its[:2])["c_shaped"]


def test_the_verdicts_on_fixed_numbers():
    script = load_script("reproduce_tradeoffs")
    front = {"step_ms": ["sgd", "small_fc_lopt"], "memory_bytes": ["sgd", "small_fc_lopt"]}
    v = script.pareto_verdict({"a": {"front": front}, "b": {"front": front}})
    assert v.reproduced and "a step: on the front (sgd, small_fc_lopt)" in v.measured
    v = script.pareto_verdict({"a": {"front": front}, "b": {"front": {**front, "memory_bytes": ["sgd"]}}})
    assert not v.reproduced and "b memory: off the front (sgd)" in v.measured
    suite = Suite("s", tuple(SuiteTask(tasks.parse({"name": n, "kind": "quadratic"}), 10) for n in ("mlp", "conv")),
                  10, (1e-3, 1.0))
    v = script.overhead_verdict({"mlp": {"small_fc_lopt": {"over_sgd": 3.0}},
                                 "conv": {"small_fc_lopt": {"over_sgd": 1.2}}}, suite)
    assert v.reproduced and v.measured == "mlp: 3.00x, conv: 1.20x"
    fig3 = {"task": "mlp", "widths": {"2": {"meta_loss": 0.3}, "16": {"meta_loss": 0.1}},
            "best_hand_designed": {"name": "nadamw", "meta_loss": 0.2}}
    v = script.width_verdict(fig3)
    assert not v.reproduced and "hidden size 2: 0.3 vs nadamw 0.2" in v.measured
    shapes = {"a": {"c_shape": {"shape": "C-shaped: ...", "c_shaped": True}},
              "b": {"c_shape": {"shape": "not C-shaped: ...", "c_shaped": False}}}
    assert not script.generalization_verdict(shapes).reproduced
    hand = {"sgd": {"multiple": 1, "a": {"mean_loss": 0.5}}, "adam": {"multiple": 1, "a": {"mean_loss": 0.3}},
            "adam_2x": {"multiple": 2, "a": {"mean_loss": 0.1}}}
    assert script.best_hand_designed(hand, "a") == {"name": "adam", "meta_loss": 0.3}


@pytest.mark.parametrize("suite, message", [("nope", "'nope' is not a shipped suite; valid choices: "),
                                            ("offline_small", "offline_small has 11 tasks")])
def test_a_suite_that_is_not_a_pair_is_a_usage_error(suite, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        load_script("reproduce_tradeoffs").main(["--quick", "--suite", suite, "--out", str(tmp_path / "x")])
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
