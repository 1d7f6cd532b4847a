import pytest

from lopt.config import config_groups
from lopt.errors import ConfigError
from lopt.evaluation.suite import parse
from tests.conftest import compose

QUAD = {"kind": "quadratic", "dim": 4}


def test_a_suite_names_its_tasks_by_their_keys():
    suite = parse({"name": "s", "eval_every": 5, "tasks": {"a": {**QUAD, "name": "x", "num_steps": 10},
                                                          "b": {**QUAD, "num_steps": 20}}})
    assert [t.name for t in suite.tasks] == ["a", "b"] and [t.num_steps for t in suite.tasks] == [10, 20]
    assert suite.lr_range == (1e-4, 1.0)


@pytest.mark.parametrize("name", config_groups()["suite"])
def test_every_shipped_suite_composes_and_parses(name):
    suite = parse(compose("evaluate", f"suite={name}").suite)
    assert suite.name == name and len({t.name for t in suite.tasks}) == len(suite.tasks) > 0


def test_a_suite_task_is_a_variant_of_a_shipped_task():
    suite = parse(compose("evaluate", "suite=smoke").suite)
    assert [t.name for t in suite.tasks] == ["digits_mlp", "quadratic"]
    assert suite.task("digits_mlp").config.hidden == (16,)  # the suite's variant of the shipped task


@pytest.mark.parametrize("node, message", [
    (None, "suite is empty"),
    ({"name": "s", "tasks": {}}, "suite.tasks of suite 's' is empty"),
    ({"name": "s", "tasks": {"a": QUAD}}, "suite.tasks.a.num_steps is missing"),
    ({"name": "s", "eval_every": 5, "tasks": {"a": {**QUAD, "num_steps": 7}}},
     "suite.tasks.a.num_steps=7 is invalid: it must be a multiple of suite.eval_every=5."),
    ({"name": "s", "tasks": {"a": {**QUAD, "dim": 0, "num_steps": 25}}}, "suite.tasks.a.dim=0 is invalid"),
    ({"name": "s", "tasks": {"a": {**QUAD, "num_steps": 0}}}, "suite.tasks.a.num_steps=0 is invalid"),
    ({"name": "s", "lr_range": [1.0, 0.1], "tasks": {"a": {**QUAD, "num_steps": 25}}}, "suite.lr_range=[1.0, 0.1]"),
    ({"name": "s", "task": {}}, "Unknown key suite.task. Valid keys: eval_every, lr_range, name, tasks."),
])
def test_bad_suites_name_the_task_and_key(node, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(node)
