"""scripts/reproduce_self_training.py end to end at toy scale: a population, its adam_clip control and
the Adam references as lopt runs, Figure 2, the JSON and the verdicts, every number as the runs wrote it."""
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from lopt.evaluation.baseline_free import LOG_RELATIVE_LOSS, task_score
from tests.scripts import load_script

KEY = "eval/population/normalized_loss"
DEFAULT_KEY = f"eval/population/{LOG_RELATIVE_LOSS}"  # population.score's default: no baseline


def last_evaluations(member_dir):
    records = [json.loads(line) for line in (member_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if DEFAULT_KEY in r]


def test_self_training_pipeline_writes_figure_json_and_verdicts_matching_its_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    load_script("reproduce_self_training").main(
        ["--out", str(tmp_path / "s"), "--control", "--lrs", "0.01,0.1",
         "suite_tasks=[quadratic]", "suite.tasks.quadratic.num_steps=50", "population.size=2",
         "population.trunc_lengths=[5]", "num_tasks=2", "outer_iterations=6", "eval.every=2",
         "population.exploit_every=2", "eval.num_seeds=2", f"eval.baselines.dir={tmp_path / 'baselines'}",
         "log_every=1", "checkpoint_every=0", "lopt=learnable_adam", "~lopt.step_mult", "data.source=synthetic",
         "data.synthetic_examples=64", "tracking.mode=disabled"])
    s = tmp_path / "s"
    result = json.loads((s / "self_training.json").read_text())
    assert (result["tasks"], result["population_size"], result["outer_iterations"]) == (["quadratic"], 2, 6)

    # the members' points and final scores are what the population run logged
    for name in ("population", "control"):
        run = result[name]
        finals = []
        for i, member in enumerate(run["members"]):
            rows = last_evaluations(s / name / "members" / str(i))
            assert member["outer_iteration"] == [2, 4, 6] == [r["outer_iteration"] for r in rows]
            assert member["score"] == [r[DEFAULT_KEY] for r in rows]
            assert member["minutes"] == pytest.approx([r["time/wall_s"] / 60 for r in rows])
            finals.append(rows[-1][DEFAULT_KEY])
        assert run["final"]["per_member"] == finals
        assert run["final"]["score"] == min(finals) and finals[run["final"]["best_member"]] == min(finals)
    assert OmegaConf.load(s / "control" / "config.yaml").population.outer == "adam_clip"

    # the references: the same seeds and score, each number its suite.json's
    for ref in [result["adam_tuned"], *result["adam_fixed"]]:
        config = OmegaConf.load(Path(ref["run_dir"]) / "config.yaml")
        assert (config.seed, config.num_seeds, list(config.suite_tasks)) == (0, 2, ["quadratic"])
        suite = json.loads((Path(ref["run_dir"]) / "suite.json").read_text())
        assert ref["score"] == task_score(suite["tasks"]["quadratic"], LOG_RELATIVE_LOSS)
    assert OmegaConf.load(s / "adam_tuned" / "config.yaml").tuned == "grid"
    assert [r["lr"] for r in result["adam_fixed"]] == [0.01, 0.1]
    best_fixed = min(r["score"] for r in result["adam_fixed"])
    assert result["best_fixed"]["score"] == best_fixed

    # the verdicts follow from the numbers and are printed with them
    final = result["population"]["final"]["score"]
    v = result["verdicts"]
    assert v["beats_best_fixed_lr"] == (final < best_fixed)
    assert v["beats_tuned"] == (final < result["adam_tuned"]["score"])
    assert v["beats_control"] == (final < result["control"]["final"]["score"])
    rate, best = result["improvement_rate"], result["population"]["best"]
    assert best["score"] == [min(m["score"][k] for m in result["population"]["members"]) for k in range(3)]
    mid = (best["minutes"][0] + best["minutes"][-1]) / 2
    assert rate["score_mid"] == pytest.approx(np.interp(mid, best["minutes"], best["score"]))
    assert v["rate_rises"] == (rate["second_half_per_min"] > rate["first_half_per_min"])
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict (")]
    assert [line[:11] for line in verdicts] == ["verdict (a)", "verdict (b)", "verdict (c)", "verdict (d)"]
    assert verdicts == result["verdict_lines"]
    assert f"{final:.4f}" in verdicts[0] and f"{best_fixed:.4f}" in verdicts[0]
    assert f"{result['adam_tuned']['score']:.4f}" in verdicts[1]
    assert ("YES" in verdicts[2]) == v["rate_rises"] and ("YES" in verdicts[3]) == v["beats_control"]
    for figure in result["figures"]:
        assert (s / figure).stat().st_size > 0


def test_a_population_run_that_stopped_early_is_a_result_and_its_verdicts_say_where(tmp_path):
    """A population run that fails after logging evaluations (a run stopped because every member's
    losses went non-finite) is read as far as it got; any other failure stops the script."""
    script = load_script("reproduce_self_training")
    run = tmp_path / "population"
    scores = {0: [0.9, 0.5, 1.0], 1: [0.8, 0.6, 1.0]}
    for i, values in scores.items():
        (run / "members" / str(i)).mkdir(parents=True)
        rows = [{"outer_iteration": it, "time/wall_s": 6.0 * it, KEY: v, "eval/quadratic/normalized_loss": v}
                for it, v in zip((10, 20, 30), values)]
        (run / "members" / str(i) / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "metrics.jsonl").write_text(json.dumps({"outer_iteration": 35}) + "\n")
    _, error = script._lopt("meta-train", run, ["+experiment=population_self_training", "population.size=0"],
                            may_stop=True)
    assert error.startswith("population.size=0 is invalid")  # the command's own error, read back
    with pytest.raises(SystemExit):
        script._lopt("meta-train", tmp_path / "other", ["population.size=0"], may_stop=True)  # nothing logged

    stopped = ("Meta-training stopped at outer iteration 35: the loss of every member's tasks or the outer update "
               "has been non-finite for 10 consecutive iterations (max_nonfinite_iterations=10), so theta has not "
               "changed since 25.")
    pop = script._population(run, 2, "normalized_loss", ["quadratic"], 1.0, stopped)
    assert pop["best"]["score"] == [0.8, 0.5, 1.0] and pop["best"]["member"] == [1, 0, 0]
    assert pop["final"]["score"] == 1.0 and pop["final"]["outer_iteration"] == 30
    assert pop["best_ever"] == {"outer_iteration": 20, "minutes": 2.0, "member": 0, "score": 0.5}
    assert script._stop_note(pop, 40) == ("; the run stopped early at outer iteration 35 of 40: the loss of every "
                                          "member's tasks or the outer update has been non-finite for 10 "
                                          "consecutive iterations (max_nonfinite_iterations=10)")
    rate = script._improvement_rate(pop["best"], 1.0)  # 1 -> 2 -> 3 min: 0.8 -> 0.5 -> 1.0
    assert (rate["first_half_per_min"], rate["second_half_per_min"], rate["rising"]) == (
        pytest.approx(0.3), pytest.approx(-0.5), False)
