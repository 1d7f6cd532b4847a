"""The model card's parts: a suite's scores on fixed numbers, a run's command, compute and own
evaluations from the files a meta-train run writes."""
import json

import yaml

from lopt.evaluation import model_card


def test_a_runs_command_compute_and_own_evaluations_come_from_its_records(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["+experiment=x", "hydra/launcher=joblib",
                                                                   "outer_opt.lr=0.001"]))
    records = [{"outer_iteration": 50, "time/wall_s": 60.0},
               {"outer_iteration": 100, "eval/iqm/speedup_over_adam": 0.5, "eval/a/speedup_over_adam": 0.4,
                "eval/s/iqm/speedup_over_adam": 0.5},
               {"outer_iteration": 100, "time/wall_s": 150.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "best.json").write_text(json.dumps({"metric": "eval/iqm/speedup_over_adam", "value": 0.5, "iteration": 100}))
    assert model_card.command(run) == "lopt meta-train +experiment=x outer_opt.lr=0.001"
    assert model_card.compute(run) == "100 outer iterations in 2.5 min of wall time"
    text = "\n".join(model_card.in_run_scores(run))
    assert "(1, the last at outer iteration 100; no intervals)" in text
    assert "- `eval/iqm/speedup_over_adam`: 0.5\n- kept by `eval.select` (best_theta/): outer iteration 100" in text
    assert "eval/a/" not in text and "eval/s/" not in text  # the aggregates only
    empty = tmp_path / "empty"
    empty.mkdir()
    assert model_card.command(empty) is None and model_card.compute(empty) is None
    assert model_card.in_run_scores(empty) == []


def test_the_cards_suite_section_states_the_aggregates_and_every_task():
    stat = {"value": 1.2, "ci": [0.9, 1.5]}
    doc = {"num_seeds": 5, "seed": 1, "aggregates": {"speedup_over_adam": {"iqm": stat},
                                                     "loss_ratio": {"iqm": {"value": 0.8, "ci": None}},
                                                     "win_fraction": {"value": 0.5, "ci": [0.0, 1.0]}},
           "tasks": {"a": {"scores": {"speedup_over_adam": 3.0, "loss_ratio": 0.5, "beats_adam": True, "capped": True},
                           "baseline": {"horizon_mult": 3}},
                     "b": {"scores": {"speedup_over_adam": 0.4, "loss_ratio": 1.5, "beats_adam": False},
                           "baseline": {"horizon_mult": 3}}}}
    text = "\n".join(model_card.suite_section("s", doc))
    assert "### `s` (2 tasks, 5 evaluation seeds, seed stream 1, baselines at [3]x the task length)" in text
    assert "- IQM speedup over tuned Adam: 1.2 [0.9, 1.5]" in text and "- IQM loss ratio: 0.8\n" in text
    assert "- tasks beating tuned Adam: 1 of 2 (fraction 0.5 [0, 1])" in text
    assert "| `a` | >=3 | 0.5 | yes |" in text and "| `b` | 0.4 | 1.5 | no |" in text
