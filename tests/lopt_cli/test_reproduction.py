"""lopt_cli.reproduction: the verdict line, reading records, composing a command's config, and running a
command whose failure stops the script unless the caller accepts what it logged."""
import json

import pytest

from lopt_cli.reproduction import Verdict, compose_config, finish, forwarded, run_lopt


def test_a_verdict_line_names_the_figure_claim_numbers_and_outcome():
    v = Verdict("Fig. 4a", "short truncations pull the learning rate away", "0.02 vs 0.03", True)
    assert v.line() == "verdict (Fig. 4a): short truncations pull the learning rate away: 0.02 vs 0.03 -> REPRODUCED"
    assert Verdict("Fig. 7", "c", "m", False).line().endswith("-> NOT reproduced")
    assert v.to_json() == {"figure": "Fig. 4a", "claim": "short truncations pull the learning rate away",
                           "measured": "0.02 vs 0.03", "reproduced": True}


def test_a_config_is_composed_as_the_command_runs_it_and_a_bad_one_stops_the_script():
    cfg = compose_config("s", "meta-train", ["task=wine_mlp", "num_tasks=3"])
    assert (cfg.task.name, cfg.num_tasks) == ("wine_mlp", 3)
    assert compose_config("s", "baseline-sweep", ["num_seeds=2"]).num_seeds == 2
    with pytest.raises(SystemExit, match=r"^s: `lopt meta-train task=nope` does not compose: "):
        compose_config("s", "meta-train", ["task=nope"])


def test_a_failed_command_stops_the_script_unless_its_log_is_accepted(tmp_path):
    bad = ["population=self_training", "population.size=0", "tracking.mode=disabled"]
    with pytest.raises(SystemExit, match=r"^s: `lopt meta-train` failed \(see above\); stopping\.$"):
        run_lopt("s", "meta-train", tmp_path / "a", bad)
    seen = []
    wall, error = run_lopt("s", "meta-train", tmp_path / "b", bad, tolerate=lambda run: seen.append(run) or True)
    assert seen == [tmp_path / "b"] and wall > 0
    assert error.startswith("population.size=0 is invalid")  # the command's own one-paragraph error


def test_only_the_overrides_of_the_given_nodes_are_forwarded():
    overrides = ["outer_iterations=3", "data.source=synthetic", "+tracking.tags=[x]", "distributed.num_processes=1",
                 "lopt.lstm_size=4", "suite.tasks.a.num_steps=5"]
    assert forwarded(overrides) == ["data.source=synthetic", "+tracking.tags=[x]", "distributed.num_processes=1"]
    assert forwarded(overrides, ("suite",)) == ["suite.tasks.a.num_steps=5"]


def test_finish_writes_the_result_with_its_verdicts_and_prints_one_line_each(tmp_path, capsys):
    verdicts = [Verdict("Fig. 1", "a", "1 < 2", True), Verdict("Fig. 2", "b", "3 > 2", False)]
    result = finish(tmp_path / "r.json", {"x": 1}, verdicts)
    assert json.loads((tmp_path / "r.json").read_text()) == result == {
        "x": 1, "verdicts": [v.to_json() for v in verdicts]}
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [verdicts[0].line(), verdicts[1].line(), f"Results in {tmp_path}."]
