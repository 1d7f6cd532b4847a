"""Evaluation during meta-training: compiled once per task, the documented keys logged, the same
numbers as a separate `lopt evaluate` of the same theta and seeds, best_theta at the best score."""
import json

import jax
import numpy as np
import pytest
from rich.console import Console

from lopt import learned
from lopt.commands import evaluate, meta_train
from lopt.errors import UserError
from lopt.evaluation import periodic
from lopt.evaluation.suite import parse as parse_suite
from lopt.io import checkpoint
from lopt.training import curves
from tests.conftest import CHEAP, compose

EVAL = ["eval.every=2", "eval.suite=smoke", "eval.tasks=[wine_mlp]", "eval.num_steps=20", "eval.num_seeds=2",
        "eval.baselines.run_missing=true", "eval.select=eval/iqm/loss_ratio"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """6 outer iterations of the cheap tiny config, evaluated every 2 on the smoke suite and
    wine_mlp, counting the evaluation programs compiled."""
    root = tmp_path_factory.mktemp("periodic")
    store = f"eval.baselines.dir={root / 'baselines'}"
    overrides = [*CHEAP, "outer_iterations=6", "checkpoint_every=2", store, *EVAL]
    compiled = []
    original = curves.compile_curves

    def counting(*args, **kwargs):
        compiled.append(args[1])
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(curves, "compile_curves", counting)
        summary = meta_train.run(compose("meta_train", *overrides), root / "run", Console(width=200))
    records = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    return root, store, summary, [r for r in records if "time/eval_s" in r], compiled


def test_each_task_compiles_once_for_every_evaluation(run):
    _, _, summary, evals, compiled = run
    assert [r["outer_iteration"] for r in evals] == [2, 4, 6]
    assert sorted(compiled) == ["digits_mlp", "quadratic", "wine_mlp"]
    assert summary["eval_s"] > 0 and summary["eval_compile_s"] > 0


def test_the_meta_training_figure_is_written(run):
    root, _, summary, evals, _ = run
    assert all(r["time/wall_s"] > 0 for r in evals)  # its wall-time axis
    assert (root / "run" / "meta_training.png").stat().st_size > 0 and "meta_training.png" in summary["wrote"]


def test_documented_keys_are_logged(run):
    _, _, _, evals, _ = run
    for task in ("digits_mlp", "quadratic", "wine_mlp"):
        for score in ("final_loss", "speedup_over_adam", "loss_ratio", "normalized_loss", "mean_loss"):
            assert np.isfinite(evals[-1][f"eval/{task}/{score}"])
    for prefix in ("eval", "eval/smoke", "eval/tasks"):
        for key in ("iqm/speedup_over_adam", "median/speedup_over_adam", "iqm/loss_ratio", "win_fraction"):
            assert f"{prefix}/{key}" in evals[-1]


def test_best_theta_is_the_theta_of_the_best_logged_score(run):
    root, _, summary, evals, _ = run
    values = [r["eval/iqm/loss_ratio"] for r in evals]
    best = evals[int(np.argmin(values))]  # a ratio: lower is better
    doc = json.loads((root / "run" / "best.json").read_text())
    assert doc == {"metric": "eval/iqm/loss_ratio", "value": min(values), "iteration": best["outer_iteration"]}
    assert summary["best_iteration"] == best["outer_iteration"]
    trainer = meta_train.build(compose("meta_train", *CHEAP)).trainer
    kept = learned.load_theta(trainer.lopt, root / "run" / "best_theta")
    ckpt = checkpoint.Checkpointer(root / "run" / "checkpoints")  # checkpoint_every = eval.every
    try:
        at_best = ckpt.restore(best["outer_iteration"], jax.eval_shape(trainer.init, jax.random.PRNGKey(0))).theta
    finally:
        ckpt.close()
    for a, b in zip(jax.tree_util.tree_leaves(kept), jax.tree_util.tree_leaves(at_best)):
        np.testing.assert_array_equal(a, b)


def test_scores_equal_a_separate_evaluation_of_the_same_theta(run):
    """`lopt evaluate suite=smoke theta=<run>` (through the optax export) on the same seeds."""
    root, _, _, evals, _ = run
    store = f"baselines.dir={root / 'baselines'}"
    evaluate.run(compose("evaluate", "suite=smoke", f"theta={root / 'run'}", store, "num_seeds=2",
                         "tracking.mode=disabled", *CHEAP[:2]),
                 root / "separate", Console(width=200))
    separate = json.loads((root / "separate" / "suite.json").read_text())["tasks"]
    for task in ("digits_mlp", "quadratic"):
        assert separate[task]["scores"]["final_loss"] == pytest.approx(evals[-1][f"eval/{task}/final_loss"], rel=1e-4)
        assert separate[task]["scores"]["speedup_over_adam"] == pytest.approx(
            evals[-1][f"eval/{task}/speedup_over_adam"])


def test_a_resumed_run_keeps_the_best_so_far(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"metric": "eval/iqm/speedup_over_adam", "value": 1.5,
                                                    "iteration": 40}))
    kept = periodic.Selection("eval/iqm/speedup_over_adam", tmp_path)
    assert (kept.value, kept.iteration) == (1.5, 40)
    assert not kept.offer(60, {"eval/iqm/speedup_over_adam": 1.2})  # higher is better: 1.2 does not replace it
    assert kept.offer(80, {"eval/iqm/speedup_over_adam": 1.7}) and kept.iteration == 80
    other = periodic.Selection("eval/iqm/loss_ratio", tmp_path)  # another metric starts afresh
    assert other.value is None and other.offer(10, {"eval/iqm/loss_ratio": 3.0})
    assert not other.offer(20, {"eval/iqm/loss_ratio": float("nan")})


@pytest.mark.parametrize("overrides, message", [
    (["eval.every=5"], "eval.every=5 is invalid: it must be 0 unless eval.suite, eval.tasks or eval.training_tasks names"),
    (["eval.every=5", "eval.suite=nope"], "Unknown eval.suite 'nope'. Valid choices: "),
    (["eval.every=5", "eval.suite=smoke"], "No adam baseline for task 'digits_mlp' .* or pass "
                                           "eval.baselines.run_missing=true"),
    (["eval.every=5", "eval.tasks=[nope]"], "Unknown eval.tasks entry 'nope'. Valid choices: "),
    (["eval.select=eval/iqm/speedup_over_adam"], "eval.select='eval/iqm/speedup_over_adam' is invalid"),
    (["eval.every=5", "eval.tasks=[wine_mlp]", "eval.baselines.run_missing=true", "eval.select=eval/iqm/speed"],
     "eval.select='eval/iqm/speed' is not a metric this evaluation logs. Valid choices: "),
])
def test_bad_eval_settings(overrides, message, tmp_path):
    """Checked while the config is validated, before any data loads or anything compiles."""
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        meta_train.build(compose("meta_train", *CHEAP, f"eval.baselines.dir={tmp_path}", *overrides))


def test_evaluate_takes_the_best_theta_on_request(run):
    """theta=<run>/best_theta: the run's architecture, read from the run's config.yaml."""
    root, _, _, _, _ = run
    c = evaluate.build(compose("evaluate", f"theta={root / 'run' / 'best_theta'}", "tracking.mode=disabled"))
    assert c.evaluated.checkpoint == root / "run" / "best_theta" and c.evaluated.learned
    assert type(c.evaluated.architecture).__name__ == "LearnableAdam"


def test_training_tasks_are_evaluated_at_their_suite_length_beside_the_other_groups():
    """eval.training_tasks: the meta-training suite's tasks (as meta-train's suite= and
    suite_tasks give them) join the evaluation as group "training", each at its suite length."""
    training = parse_suite(periodic.compose_suite("smoke")).subset(["quadratic"], "suite_tasks")
    s = periodic.EvalSettings(every=1, training_tasks=True, tasks=("wine_mlp",), num_steps=20)
    suite, named = periodic.groups(s, training)
    assert [(t.name, t.num_steps) for t in suite.tasks] == [("quadratic", 40), ("wine_mlp", 20)]
    assert named == {"training": ["quadratic"], "tasks": ["wine_mlp"]}
    suite, named = periodic.groups(periodic.EvalSettings(every=1, training_tasks=True), training)
    assert [t.name for t in suite.tasks] == ["quadratic"] and named == {"training": ["quadratic"]}
