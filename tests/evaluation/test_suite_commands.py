"""End to end on the two-task `smoke` suite: baselines, then evaluate, in this process."""
import json
import sys

import numpy as np
import pytest
from rich.console import Console

from lopt.commands import baseline_sweep, evaluate
from lopt.errors import UserError
from lopt.evaluation import scores
from tests.conftest import compose

SMALL = ["suite=smoke", "tracking.mode=disabled", "num_seeds=2", "suite.lr_range=[1e-2,1]",
         "suite.tasks.digits_mlp.num_steps=30", "suite.tasks.quadratic.num_steps=20", "data.source=synthetic",
         "data.synthetic_examples=64", "smoothing=0.9"]  # 20-30 steps: the default 0.95 averages most of the curve


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    store = f"baselines.dir={root / 'baselines'}"
    console = Console(record=True, width=200)
    swept = baseline_sweep.run(compose("baseline_sweep", *SMALL, store), root / "sweep", console)
    evaluated = evaluate.run(compose("evaluate", *SMALL, store, "optimizer.lr=0.01"), root / "eval", console)
    return root, store, swept, evaluated, console.export_text()


def test_baselines_are_stored_per_task(runs):
    root, _, swept, _, _ = runs
    files = sorted(p.name for p in (root / "baselines").iterdir())
    assert len(files) == 2 and files[0].startswith("digits_mlp.adam.") and files[1].startswith("quadratic.adam.")
    rows = json.loads((root / "sweep" / "baselines.json").read_text())["tasks"]
    for row in rows:
        doc = json.loads((root / "baselines" / row["file"].rsplit("/", 1)[-1]).read_text())
        assert doc["fields"]["horizon_mult"] == 10  # the baseline runs 10x the task's length
        assert np.asarray(doc["train_loss"], float).shape[1:] == (2, 300 if row["task"] == "digits_mlp" else 200)
        lrs = sorted(h["lr"] for h in doc["hyperparameters"])
        assert row["at_edge"] is not None or lrs[0] < row["best_lr"] < lrs[-1]  # widened until inside


def test_evaluation_scores_every_task_and_summarizes_the_suite(runs):
    root, _, _, summary, text = runs
    doc = json.loads((root / "eval" / "suite.json").read_text())
    assert list(doc["tasks"]) == ["digits_mlp", "quadratic"]
    for task in doc["tasks"].values():
        p = task["scores"]
        assert all(np.isfinite(p[k]) for k in ("final_loss", "best_adam_loss", "loss_ratio", "speedup_over_adam"))
        assert 0 < p["speedup_over_adam"] <= 10 and (p["speedup_over_adam"] == 10 or not p["capped"])
        assert task["baseline"]["horizon_mult"] == 10
        assert 10 * len(task["curves"]["train_loss"]) == len(task["curves"]["envelope"]) == 10 * task["num_steps"]
    agg = doc["aggregates"]
    assert agg["num_tasks"] == 2 and np.isfinite(agg["speedup_over_adam"]["iqm"]["value"])
    assert 0.0 <= agg["win_fraction"]["value"] <= 1.0
    assert (root / "eval" / "suite.png").stat().st_size > 0
    assert "IQM speedup over Adam" in text and summary["tasks"] == 2


def test_evaluation_seeds_are_not_the_baselines(runs):
    """Adam at its tuned learning rate, evaluated: seeds of its own, so not the baseline's curves."""
    root, store, _, _, _ = runs
    doc = json.loads(next((root / "baselines").glob("quadratic.*")).read_text())
    best = doc["hyperparameters"][doc["best"]]["lr"]
    evaluate.run(compose("evaluate", *SMALL, store, f"optimizer.lr={best}"), root / "again", Console(width=200))
    result = json.loads((root / "again" / "suite.json").read_text())["tasks"]["quadratic"]
    steps = len(result["curves"]["train_loss"])  # the baseline ran 10x longer
    baseline_curve = scores.smooth(np.asarray(doc["train_loss"], float)[doc["best"], :, :steps], 0.9).mean(axis=0)
    assert not np.allclose(result["curves"]["train_loss"], baseline_curve)  # other seeds: other curves
    assert result["scores"]["speedup_over_adam"] == pytest.approx(1.0, abs=0.35)


def test_a_baseline_made_for_another_task_config_is_refused(runs):
    _, store, _, _, _ = runs
    with pytest.raises(UserError, match=r"No adam baseline for task 'digits_mlp' .* was made for another "
                                        r"configuration \(task.batch_size: 128 there, 64 here\)"):
        evaluate.build(compose("evaluate", *SMALL, store, "suite.tasks.digits_mlp.batch_size=64"))


def test_compare_to_another_evaluation(runs):
    root, store, _, _, _ = runs
    console = Console(record=True, width=250)
    evaluate.run(compose("evaluate", *SMALL, store, "optimizer.lr=0.1", f"compare_to={root / 'eval' / 'suite.json'}"),
                 root / "compared", console)
    doc = json.loads((root / "compared" / "suite.json").read_text())
    assert doc["compared_to"]["label"] == "adam lr=0.01"
    assert "adam lr=0.01: ratio" in console.export_text()


def test_tuned_adam_takes_each_tasks_best_configuration(runs):
    """tuned=grid: Adam at the learning rate each task's own baseline found best; it scores about
    1 against that same baseline (other seeds)."""
    root, store, _, _, _ = runs
    c = evaluate.build(compose("evaluate", *SMALL, store, "tuned=grid"))
    for entry in c.plan.suite.tasks:
        doc = json.loads(next((root / "baselines").glob(f"{entry.name}.*")).read_text())
        assert c.plan.tuned[entry.name]["lr"] == doc["hyperparameters"][doc["best"]]["lr"]
    summary = evaluate.run(compose("evaluate", *SMALL, store, "tuned=grid"), root / "tuned", Console(width=200))
    assert summary["optimizer"] == "adam (tuned per task: grid search)"
    doc = json.loads((root / "tuned" / "suite.json").read_text())
    for task in doc["tasks"].values():
        assert task["scores"]["speedup_over_adam"] == pytest.approx(1.0, rel=0.5)
        assert task["scores"]["loss_ratio"] == pytest.approx(1.0, rel=0.5)


def test_a_missing_dataset_package_is_named_and_nothing_is_written(runs, monkeypatch):
    """A suite task whose data needs a package that is not installed: the error names it, and the
    run writes nothing (the other tasks' baselines exist, so only this one would be swept)."""
    root, store, _, _, _ = runs
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    cfg = compose("evaluate", *SMALL, store, "data.source=real", "baselines.run_missing=true",
                  "+suite.tasks.signals={kind: vector, dataset: mnist1d, hidden: [8], num_steps: 20}")
    with pytest.raises(UserError, match="mnist1d"):
        evaluate.run(cfg, root / "missing", Console(width=200))
    assert not (root / "missing").exists()


def test_tuned_nadamw_from_a_random_search(runs):
    """optimizer=nadamw tuned=random: each task's best of its own random-search baseline (all 10
    hyperparameters, Nesterov a boolean stored as 0/1), scored against tuned Adam."""
    root, store, _, _, _ = runs
    console = Console(width=200)
    baseline_sweep.run(compose("baseline_sweep", *SMALL, store, "optimizer=nadamw", "sweep.num_samples=3"),
                       root / "nadamw_sweep", console)
    summary = evaluate.run(compose("evaluate", *SMALL, store, "optimizer=nadamw", "tuned=random"),
                           root / "nadamw", console)
    assert summary["optimizer"] == "nadamw (tuned per task: random search)"
    doc = json.loads((root / "nadamw" / "suite.json").read_text())
    assert all(np.isfinite(t["scores"]["final_loss"]) for t in doc["tasks"].values())


def test_suite_tasks_evaluates_some_of_the_suite_with_the_same_scores(runs):
    """suite_tasks=[quadratic]: only that task, scored as in the whole suite's evaluation (the
    same seeds), and the aggregates over it alone."""
    root, store, _, _, _ = runs
    evaluate.run(compose("evaluate", *SMALL, store, "optimizer.lr=0.01", "suite_tasks=[quadratic]"),
                 root / "some", Console(quiet=True))
    some = json.loads((root / "some" / "suite.json").read_text())
    whole = json.loads((root / "eval" / "suite.json").read_text())
    assert list(some["tasks"]) == ["quadratic"] and some["aggregates"]["num_tasks"] == 1
    assert some["tasks"]["quadratic"]["scores"] == whole["tasks"]["quadratic"]["scores"]
    with pytest.raises(UserError, match=r"suite_tasks=\['quadratic'\] needs suite=<name>"):
        evaluate.build(compose("evaluate", "suite_tasks=[quadratic]"))
