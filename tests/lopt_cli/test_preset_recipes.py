"""The recipe blocks of the presets' headers (tests/lopt_cli/recipes.py) against the composed
configs: each value a header states is the value the preset sets, and each deviation it lists
differs from the reference and says why."""
from dataclasses import replace

import pytest

from lopt.evaluation.suite import parse
from lopt_cli.main import COMMANDS
from tests.conftest import compose
from tests.lopt_cli import recipes

RECIPES = recipes.presets_with_recipes()


def _build(cfg):
    return COMMANDS["meta-train"].load().build(cfg)


def test_the_celo_presets_state_their_recipes():
    assert {"celo", "celo_phase2", "celo2", "celo_offline_suite"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_the_header_recipe_is_the_composed_config(name):
    assert recipes.mismatches(compose("meta_train", f"+experiment={name}"), _build, recipes.claims(name)) == []


@pytest.mark.parametrize("override, keys", [
    ("outer_opt.lr=1e-3", ["outer_opt.lr"]),
    ("augment.range=[0.01,100.0]", ["augment.range"]),
    ("num_tasks=4", ["num_tasks"]),
    ("suite.tasks.celo_wine.batch_size=32", ["tasks.batch_size"]),
    ("suite_tasks=[celo_digits,celo_wine]",
     ["families", "tasks.hidden", "tasks.activation", "tasks.batch_size", "tasks.dataset"]),
])
def test_a_config_that_departs_from_the_header_is_reported(override, keys):
    problems = recipes.mismatches(compose("meta_train", "+experiment=celo", override), _build, recipes.claims("celo"))
    assert [p.split(": ")[0] for p in problems] == keys


def test_inheriting_takes_the_parents_claims_and_replaces_its_own():
    phase1, phase2 = recipes.claims("celo"), recipes.claims("celo_phase2")
    assert phase2["lopt.phase"].value == 2 and phase1["lopt.phase"].value == 1
    assert {k: c for k, c in phase2.items() if k != "lopt.phase"} == {k: c for k, c in phase1.items() if k != "lopt.phase"}


def test_a_deviation_that_equals_the_reference_is_reported():
    claim = recipes.claims("celo")["outer_iterations"]
    same = {"outer_iterations": recipes.Claim("deviations", claim.value, claim.value, claim.why)}
    problems = recipes.mismatches(compose("meta_train", "+experiment=celo"), _build, same)
    assert problems == [f"outer_iterations: a deviation must differ from the reference ({claim.value!r}) and say why"]


@pytest.mark.parametrize("name", ["celo", "celo2"])
def test_the_celo_task_families_are_no_offline_heldout_tasks(name):
    """Held-out tasks stay held out: no training task is an offline_heldout task under another name."""
    heldout = [replace(t.config, name="") for t in parse(compose("evaluate", "suite=offline_heldout").suite).tasks]
    training = _build(compose("meta_train", f"+experiment={name}")).task_configs
    assert len(training) == 4 and not any(replace(t, name="") in heldout for t in training)
