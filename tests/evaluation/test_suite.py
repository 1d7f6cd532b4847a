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


def test_the_tradeoffs_suites_are_the_papers_pair_and_its_offline_stand_ins():
    """Practical tradeoffs (Metz et al. 2022, sec. 3.1): the Fashion-MNIST MLP 128-128 and the CIFAR-10
    ConvNet, 2k steps; offline: an MLP 128-128 on the digits and mnist1d's convnet."""
    paper = parse(compose("evaluate", "suite=tradeoffs").suite)
    assert [(t.name, t.num_steps) for t in paper.tasks] == [("fmnist_mlp", 2000), ("conv_cifar", 2000)]
    assert paper.task("fmnist_mlp").config.hidden == (128, 128)
    offline = parse(compose("evaluate", "suite=tradeoffs_offline").suite)
    assert [(t.name, t.num_steps) for t in offline.tasks] == [("digits_mlp128", 200), ("mnist1d_conv", 200)]
    assert offline.task("digits_mlp128").config.hidden == (128, 128)
    assert offline.task("digits_mlp128").config.dataset == "digits"
    assert offline.task("mnist1d_conv").config.model == "conv1d"
