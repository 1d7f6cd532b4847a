"""Config groups of the user's own (`--config-dir`, `-cd`, `hydra.searchpath`): composed, validated and
listed like the shipped ones, end to end through the CLI."""
import json

import pytest
import yaml

from lopt import config
from tests.conftest import records

SUITE = {  # a two-task suite reusing shipped task configs, as the shipped suites do
    "defaults": [{"/task@tasks.digits": "digits_mlp"}, {"/task@tasks.wine": "wine_mlp"}, "_self_"],
    "name": "mine", "eval_every": 5, "lr_range": [1.0e-2, 1.0],
    "tasks": {"digits": {"num_steps": 10, "hidden": [8]}, "wine": {"num_steps": 10, "hidden": [8]}},
}
PRESET = {"defaults": [{"override /task": "wine_mlp"}], "num_tasks": 2, "outer_iterations": 2, "log_every": 1,
          "task": {"hidden": [4]}, "schedule": {"length": 6}, "estimator": {"trunc_length": 3}}
FAST = ["num_seeds=1", "tracking.mode=disabled"]


@pytest.fixture
def my_conf(tmp_path):
    """A folder of the user's own: suite/mine.yaml and experiment/my_recipe.yaml."""
    root = tmp_path / "my_conf"
    (root / "suite").mkdir(parents=True)
    (root / "experiment").mkdir()
    (root / "suite" / "mine.yaml").write_text(yaml.safe_dump(SUITE))
    (root / "experiment" / "my_recipe.yaml").write_text("# @package _global_\n" + yaml.safe_dump(PRESET))
    return root


def _scores(run_dir):
    doc = json.loads((run_dir / "suite.json").read_text())
    return {name: task["scores"] for name, task in doc["tasks"].items()}


def test_a_user_suite_is_swept_and_scored_the_same_through_either_convention(lopt_here, my_conf, tmp_path):
    store = f"baselines.dir={tmp_path / 'baselines'}"
    assert lopt_here("baseline-sweep", "--config-dir", str(my_conf), "suite=mine", store, *FAST) == 0
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "baselines").iterdir()) == ["digits", "wine"]
    scored = {}
    for name, where in [("cd", ["-cd", str(my_conf)]), ("searchpath", [f"hydra.searchpath=[file://{my_conf}]"])]:
        assert lopt_here("evaluate", *where, "suite=mine", "optimizer=sgd", store, *FAST,
                         f"hydra.run.dir={tmp_path / name}") == 0
        scored[name] = _scores(tmp_path / name)
    assert sorted(scored["cd"]) == ["digits", "wine"]
    assert scored["cd"] == scored["searchpath"]  # the same suite, the same numbers
    assert all(s["speedup_over_adam"] > 0 for s in scored["cd"].values())


def test_a_user_preset_configures_meta_training(lopt_here, my_conf, tmp_path):
    run = tmp_path / "run"
    assert lopt_here("meta-train", "-cd", str(my_conf), "+experiment=my_recipe", "tracking.mode=disabled",
                     f"hydra.run.dir={run}") == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["task"]["name"] == "wine_mlp" and recorded["task"]["hidden"] == [4]
    assert [r["outer_iteration"] for r in records(run / "metrics.jsonl")] == [1, 2]


def test_user_options_are_listed_and_validated_like_shipped_ones(lopt_here, my_conf, capsys):
    assert lopt_here("evaluate", "-cd", str(my_conf), "--help") == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("suite: "))
    assert "mine" in listed.split(": ")[1].split(", ") and "smoke" in listed
    assert lopt_here("evaluate", "-cd", str(my_conf), "suite=mien", *FAST) == 2
    err = capsys.readouterr().err
    assert "'mien'" in err and "mine" in err and "offline_small" in err
    assert lopt_here("evaluate", "--config-dir", str(my_conf), "suite=mine", "suite.tasks.wine.num_steps=12",
                     *FAST) == 2
    assert "suite.tasks.wine.num_steps=12 is invalid: it must be a multiple of suite.eval_every=5" in \
        capsys.readouterr().err
    # without the folder the option is unknown, as before
    assert lopt_here("evaluate", "suite=mine", *FAST) == 2
    assert "Unknown suite option (suite=) 'mine'" in capsys.readouterr().err
    assert config.config_groups()["suite"].count("mine") == 0


@pytest.mark.parametrize("args, message", [
    (["--config-dir", "missing"], "The config directory '{cwd}/missing' (from file://{cwd}/missing) does not exist"),
    (["-cd"], "-cd needs a directory"),
    (["hydra.searchpath=[http://example.org/conf]"], "hydra.searchpath entry 'http://example.org/conf' names no "
                                                      "config directory"),
])
def test_a_bad_config_directory_is_one_paragraph(lopt_here, tmp_path, capsys, args, message):
    assert lopt_here("evaluate", *args, "suite=smoke") == 2
    assert message.format(cwd=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()
