"""`lopt meta-train population=...` end to end: a population SIGKILLed mid-run and resumed ends
exactly as an uninterrupted one (every member's state, the assignments, the PBT key, the event log
and every member's records), and what a run writes is what its members did."""
import json
import os

import jax
import numpy as np
import pytest

from lopt.commands import meta_train, population
from tests import cli_process
from tests.conftest import compose, records
from tests.population import final_state

SIZE = 3


def run_args(store):
    return ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_tasks=2",
            "schedule.length=50", "lopt=learnable_adam", "population=self_training", f"population.size={SIZE}",
            "population.trunc_lengths=[3,5]", "population.exploit_every=2", "population.p_resample_length=0.5",
            "eval.tasks=[wine_mlp]", "eval.num_steps=20", "eval.num_seeds=2", "eval.every=4",
            "eval.baselines.run_missing=false", f"eval.baselines.dir={store}", "outer_iterations=8", "log_every=1",
            "checkpoint_every=1"]



@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 8-iteration population, and the same run SIGKILLed after its third
    checkpoint and resumed (an exploit step every 2 iterations, every member evaluated every 4)."""
    cwd = tmp_path_factory.mktemp("population")
    store = cwd / "baselines"
    full = cli_process.run("meta-train", *run_args(store), "hydra.run.dir=full", cwd=cwd)
    assert full.returncode == 0, full.stderr
    killed = cwd / "killed"
    cli_process.kill_after_checkpoint("meta-train", *run_args(store), f"hydra.run.dir={killed}", cwd=cwd,
                                      run_dir=killed, step=3)
    resumed = cli_process.run("meta-train", *run_args(store), f"resume={killed}", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr
    return store, cwd / "full", killed, full, resumed


def test_a_killed_and_resumed_population_equals_an_uninterrupted_one(runs):
    store, full, killed, _, resumed = runs
    assert "Resuming" in resumed.stdout
    a, b = final_state(full, *run_args(store)), final_state(killed, *run_args(store))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert (killed / "events.jsonl").read_text() == (full / "events.jsonl").read_text()
    for i in range(SIZE):
        path = os.path.join("members", str(i), "metrics.jsonl")
        assert records(killed / path) == records(full / path)
    assert records(killed / "metrics.jsonl") == records(full / "metrics.jsonl")


def test_the_event_log_and_checkpoint_record_what_the_population_did(runs):
    store, full, _, done, _ = runs
    events = [json.loads(line) for line in (full / "events.jsonl").read_text().splitlines()]
    assert [e["outer_iteration"] for e in events] == [2, 4, 6]  # none at the last iteration
    state = final_state(full, *run_args(store))
    outer, lengths = np.asarray(state.outer), np.asarray(state.trunc_length)
    last = {}
    for e in events:
        assert e["winner"] != e["loser"] and e["outer"] != e["loser"] and e["trunc_length"] in (3, 5)
        assert e["winner_score"] <= e["loser_score"]  # log relative loss: lower wins
        last[e["loser"]] = e
    for loser, e in last.items():  # the latest event of each loser is its assignment now, unless it won since
        if all(later["winner"] != loser for later in events[events.index(e) + 1:]):
            assert outer[loser] == e["outer"] and lengths[loser] == e["trunc_length"]
    assert all(o != i for i, o in enumerate(outer))  # nobody trains itself
    assert int(state.iteration) == 8 and np.asarray(state.members.iteration).tolist() == [8] * SIZE
    rows = [json.loads(line) for line in (full / "members" / "0" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/population/log_relative_loss" in r]
    assert [r["outer_iteration"] for r in evals] == [4, 8]
    assert all(np.isfinite(r["eval/population/log_relative_loss"]) for r in evals)
    assert all(r["eval/population/log_relative_loss"] == r["eval/wine_mlp/log_relative_loss"] for r in evals)
    assert "population/outer" in rows[0] and np.isfinite(rows[0]["outer/loss"])
    assert (full / "final_theta").is_dir() and (full / "population.png").stat().st_size > 0
    assert "best_member" in done.stdout


def test_the_default_score_reads_and_sweeps_no_baseline(runs):
    """eval.baselines.run_missing=false and an empty store: a population scored by
    log_relative_loss runs without any baseline, and logs no score that would need one."""
    store, full = runs[0], runs[1]
    assert not store.exists()
    rows = [json.loads(line) for line in (full / "members" / "1" / "metrics.jsonl").read_text().splitlines()]
    logged = {k for r in rows for k in r if k.startswith("eval/")}
    assert logged == {f"eval/wine_mlp/{k}" for k in ("final_loss", "mean_loss", "log_relative_loss")} | {
        "eval/population/log_relative_loss"}


@pytest.fixture(scope="module")
def normalized(tmp_path_factory):
    """3 iterations of the population scored by the Adam-normalized loss (an exploit at 2), its
    baseline swept into a fresh store; and that store."""
    from rich.console import Console

    root = tmp_path_factory.mktemp("normalized")
    store = root / "baselines"
    cfg = compose("meta_train", *run_args(store), "population.score=normalized_loss", "eval.baselines.run_missing=true",
                  "outer_iterations=3", "eval.every=3", "checkpoint_every=0")
    meta_train.run(cfg, root / "run", Console(width=200))
    return root / "run", store


def test_the_adam_normalized_score_stays_selectable(normalized):
    run_dir, store = normalized
    assert any(store.rglob("*.json"))  # the tuned Adam baseline it needs
    (event,) = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert 0 <= event["winner_score"] <= event["loser_score"] <= 1
    last = [json.loads(line) for line in (run_dir / "members" / "0" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["eval/population/normalized_loss"] == last["eval/wine_mlp/normalized_loss"]
    assert np.isfinite(last["eval/wine_mlp/log_relative_loss"]) and "eval/iqm/loss_ratio" in last


def test_both_evaluations_score_a_theta_the_same(normalized):
    """The baseline-free evaluation (own curves only) and the one against tuned Adam give the same
    final loss, mean loss and log relative loss for the same theta and seeds."""
    from rich.console import Console

    from lopt.evaluation import periodic
    from lopt.platform import distributed

    run_dir, store = normalized
    c = meta_train.build(compose("meta_train", *run_args(store), "population.score=normalized_loss"))
    theta = c.trainer.lopt.init_theta(jax.random.PRNGKey(1))
    mesh, console = distributed.make_mesh(), Console(width=200)
    plain = periodic.Plan(c.settings.eval, c.settings.seed, c.shared.data, baselines=False)
    own, _ = periodic.Evaluator(plain, c.trainer.lopt, theta, mesh, console, False)(theta)
    full, _ = periodic.Evaluator(c.eval_plan, c.trainer.lopt, theta, mesh, console, False)(theta)
    assert plain.references is None and c.eval_plan.references is not None
    for k in ("final_loss", "mean_loss", "log_relative_loss"):
        assert own[f"eval/wine_mlp/{k}"] == pytest.approx(full[f"eval/wine_mlp/{k}"], rel=1e-6), k


def test_the_hand_designed_control_runs_the_same_machinery(runs, tmp_path):
    from rich.console import Console

    store = runs[0]
    cfg = compose("meta_train", *run_args(store), "population.outer=adam_clip", "outer_iterations=3",
                  "eval.every=0", "checkpoint_every=0")
    summary = meta_train.run(cfg, tmp_path / "control", Console(width=200))
    assert summary["outer"] == "adam_clip" and summary["exploit_steps"] == 1
    rows = [json.loads(line) for line in (tmp_path / "control" / "members" / "1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["outer_iteration"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["outer/theta_norm"]) for r in rows)


def test_one_wandb_run_per_member_and_the_population_in_one_group(runs, tmp_path, monkeypatch):
    import wandb
    from rich.console import Console

    made = []

    class FakeRun:
        def __init__(self, **kwargs):
            self.init, self.logged, self.summary, self.exit_code = kwargs, [], {}, None
            made.append(self)

        def log(self, record, step=None):
            self.logged.append(record)

        def finish(self, exit_code=None):
            self.exit_code = exit_code

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun(**kwargs))
    cfg = compose("meta_train", *run_args(runs[0]), "tracking.mode=offline", "outer_iterations=3", "eval.every=0",
                  "checkpoint_every=0")
    meta_train.run(cfg, tmp_path / "pop", Console(width=200))
    assert [r.init["job_type"] for r in made] == ["population", *["population-member"] * SIZE]
    assert len({r.init["group"] for r in made}) == 1 and made[0].init["group"] == "population-pop"
    assert len({r.init["id"] for r in made}) == SIZE + 1 and all(r.exit_code == 0 for r in made)
    assert [r.init["config"]["member"] for r in made[1:]] == list(range(SIZE))
    assert all(r.init["config"]["tracking"]["group"] == "population-pop" for r in made)  # the recorded group
    assert [rec["outer_iteration"] for rec in made[1].logged] == [1, 2, 3]
    assert made[0].summary["outer_iterations"] == 3
    table = [rec["population/events"] for rec in made[0].logged if "population/events" in rec][-1]
    assert table.columns == population.EVENT_COLUMNS and len(table.data) == 1  # the exploit at iteration 2
