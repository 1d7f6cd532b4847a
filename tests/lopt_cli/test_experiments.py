"""Experiment presets (conf/experiment/, `lopt meta-train +experiment=<name>`): each composes, passes
the command's validation, sets what its recipe says, and is listed by the error for an unknown one
(and by `--help`: test_help.py)."""
import functools
from importlib import resources

import numpy as np
import pytest
from omegaconf import OmegaConf

from lopt.errors import ConfigError
from lopt_cli.main import COMMANDS
from lopt_cli.validate import compose_overrides
from tests import cli_process
from tests.conftest import compose
from tests.lopt_cli import recipes

PRESETS = sorted(f.name[: -len(".yaml")] for f in (resources.files("lopt_conf") / "experiment").iterdir()
                 if f.name.endswith(".yaml"))  # as shipped in the config package
FAMILIES = ["mlp_family", "quadratic_family"]
TUTORIAL = {"lopt.name": "small_fc_lopt", "estimator.name": "pes", "estimator.std": 0.01,
            "estimator.trunc_length": 20, "schedule.name": "constant", "schedule.length": 200,
            "random_initial_offset": True, "outer_opt.name": "adam_clip", "outer_opt.lr": 3e-3,
            "outer_opt.clip": 3.0, "outer_iterations": 1000}
TRADEOFFS = {"lopt.name": "small_fc_lopt", "estimator.name": "pes", "estimator.std": 0.01,
             "estimator.trunc_length": 20, "schedule.length": 2000, "meta_loss.name": "mean",
             "outer_opt.name": "adam_clip", "outer_opt.clip": 3.0, "num_tasks": 32}
SUITE_TASKS = ["digits_mlp", "digits_mlp_tanh", "breast_cancer_mlp", "wine_mlp", "diabetes_mlp", "quadratic"]
SUITE_EVAL = {"eval.every": 1250, "eval.training_tasks": True, "eval.suite": "offline_heldout",
              "eval.select": "eval/training/iqm/speedup_over_adam"}
# What each preset's recipe is: these values, whatever the defaults are.
CLAIMS = {
    "tutorial_conv_cifar": {**TUTORIAL, "task.name": "conv_cifar", "num_tasks": 32},
    "quick_offline": {**TUTORIAL, "task.name": "digits_mlp", "num_tasks": 8},
    "offline_recipe": {**TUTORIAL, "task.name": "digits_mlp", "num_tasks": 8, "lopt.step_mult": 0.01,
                       "outer_iterations": 2000, "eval.every": 250, "eval.tasks": ["digits_mlp"],
                       "eval.select": "eval/digits_mlp/mean_loss"},
    "offline_suite": {"suite.name": "offline_small", "suite_tasks": SUITE_TASKS, "lopt.name": "small_fc_lopt",
                      "lopt.step_mult": 0.01, "estimator.name": "pes", "estimator.trunc_length": 20,
                      "estimator.normalize_task_grads": "family", "schedule.name": "log_uniform", "schedule.low": 50,
                      "schedule.high": 300, "num_tasks": 8, "outer_iterations": 20000, **SUITE_EVAL},
    "generalize_offline": {"family": ["offline_family"], "family.offline_family.num_variants": 12,
                           "family.offline_family.max_cost": 6e6, "lopt.name": "celo", "lopt.phase": 1,
                           "lopt.step_mult": 0.01, "lopt.fraction_features": True, "lopt.step_scale": "rms",
                           "estimator.name": "pes", "estimator.trunc_length": 20,
                           "estimator.normalize_task_grads": "family", "outer_opt.name": "adam_clip",
                           "num_tasks": 4, "outer_iterations": 6000, "eval.every": 0},
    "tutorial_offline": {**TUTORIAL, "task.name": "digits_mlp", "num_tasks": 8, "lopt.name": "celo", "lopt.phase": 1,
                         "lopt.step_mult": 0.01, "lopt.fraction_features": True, "outer_iterations": 2000},
    "pathologies_cifar_conv32": {
        "task.name": "cifar_conv32", "lopt.name": "fc_lopt", "estimator.name": "merged", "schedule.name": "linear",
        "schedule.start": 50, "schedule.end": 10000, "schedule.iterations": 5000, "schedule.jitter": 0.2,
        "meta_loss.name": "valid", "outer_opt.name": "adam", "outer_opt.lr": 3e-4, "outer_opt.b1": 0.5,
        "outer_opt.max_norm": None, "num_tasks": 128, "outer_iterations": 5000},
    "tradeoffs_fmnist_mlp": {**TRADEOFFS, "task.name": "fmnist_mlp"},
    "tradeoffs_conv_cifar": {**TRADEOFFS, "task.name": "conv_cifar"},
    "velo_families": {"lopt.name": "hypernet", "estimator.name": "full_es", "estimator.normalize_task_grads": "family",
                      "meta_loss.name": "final", "schedule.name": "log_uniform", "family": FAMILIES},
    "self_training": {"outer_opt.name": "lopt", "outer_opt.lopt.name": "small_fc_lopt", "schedule.name": "choice",
                      "schedule.lengths": [200, 300, 400, 800], "estimator.name": "pes", "family": FAMILIES},
    "population_self_training": {
        "population.outer": "self", "population.size": 4, "population.trunc_lengths": [10, 15, 20, 40],
        "suite.name": "offline_small", "suite_tasks": ["digits_mlp", "breast_cancer_mlp", "wine_mlp", "quadratic"],
        "lopt.name": "small_fc_lopt", "lopt.step_mult": 0.01, "estimator.name": "pes",
        "estimator.normalize_task_grads": "family", "schedule.name": "log_uniform", "schedule.low": 50,
        "schedule.high": 300, "eval.every": 50, "eval.training_tasks": True, "outer_iterations": 1000},
    # the presets whose headers state their recipes (tests/lopt_cli/recipes.py): the config keys they claim
    **{name: recipes.config_claims(name) for name in recipes.presets_with_recipes()},
}
CLAIMS["generalize_offline_phase2"] = {**CLAIMS["generalize_offline"], "lopt.phase": 2, "outer_iterations": 1000}


def _validate(args):
    """The meta-train command's validation of `args` as the CLI runs it (wherever the command's
    module lives): every config composed and built; the configs and the number of jobs."""
    configs, jobs = compose_overrides("meta_train", args)
    for cfg in configs:
        COMMANDS["meta-train"].load().build(cfg)
    return configs, jobs


@functools.cache
def _default():
    return compose("meta_train")


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = None if node is None else node.get(part)
    if key == "family":  # the selected families, by option name
        return sorted(node) if node else None
    return list(node) if OmegaConf.is_list(node) else node


def test_every_preset_has_its_claims_checked():
    assert PRESETS and sorted(CLAIMS) == PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_validates_and_sets_its_recipe(name):
    (cfg,), jobs = _validate([f"+experiment={name}"])
    assert jobs == 1 and "experiment" not in cfg  # `# @package _global_`: the preset's keys land at the top level
    for key, value in CLAIMS[name].items():
        assert _get(cfg, key) == (pytest.approx(value) if isinstance(value, float) else value), key
    if name != "quick_offline":  # the default run, named
        assert any(_get(_default(), key) != value for key, value in CLAIMS[name].items()), "the preset changes nothing"


@pytest.mark.parametrize("name", PRESETS)
def test_preset_file_cites_its_recipe_and_shows_its_command(name):
    text = (resources.files("lopt_conf") / "experiment" / f"{name}.yaml").read_text()
    lines = text.splitlines()
    assert lines[0] == "# @package _global_"
    header = [line for line in lines if line.startswith("#")]
    assert f"lopt meta-train +experiment={name}" in "\n".join(header)
    assert "seed 00" not in text.lower()


def test_overrides_after_the_preset_win():
    args = ["+experiment=tutorial_conv_cifar", "num_tasks=4", "estimator=es", "task=digits_mlp"]
    (cfg,), jobs = _validate(args)
    assert jobs == 1
    assert (cfg.num_tasks, cfg.estimator.name, cfg.task.name, cfg.lopt.name) == (4, "es", "digits_mlp", "small_fc_lopt")
    assert compose("meta_train", "num_tasks=4", "+experiment=tutorial_conv_cifar").num_tasks == 4  # order aside


def test_an_unknown_preset_is_a_config_error_naming_the_presets():
    with pytest.raises(ConfigError) as err:
        _validate(["+experiment=bad"])
    assert str(err.value) == (f"Unknown experiment option (experiment=) 'bad'. Valid choices: {', '.join(PRESETS)}.")


def test_cli_unknown_preset_exits_2_naming_the_presets(tmp_path):
    out = cli_process.run("meta-train", "+experiment=bad", cwd=tmp_path)
    err = " ".join(out.stderr.split())
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"Unknown experiment option (experiment=) 'bad'. Valid choices: {', '.join(PRESETS)}." in err
    assert not (tmp_path / "outputs").exists()


# Per preset, what shrinks it to seconds (short problems, one variant per family) beside SHRINK.
SHRINK = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_tasks=2",
          "outer_iterations=2", "log_every=1", "eval.every=0", "eval.select=null"]
SMALLER = {
    "velo_families": ["schedule.low=4", "schedule.high=6", "family.mlp_family.num_variants=1",
                      "family.quadratic_family.num_variants=1"],
    "self_training": ["estimator.trunc_length=3", "schedule.lengths=[4,6]", "family.mlp_family.num_variants=1",
                      "family.quadratic_family.num_variants=1"],
    "pathologies_cifar_conv32": ["estimator.trunc_length=3", "schedule.start=4", "schedule.end=8",
                                 "task.batch_size=8"],  # unoptimized (-O0) convolutions run slowly at 128
    **{n: ["estimator.trunc_length=3", "schedule.length=6"]
       for n in ("offline_recipe", "tutorial_offline", "tradeoffs_fmnist_mlp")},
    **{n: ["estimator.trunc_length=3", "schedule.length=6", "task.batch_size=8"]
       for n in ("tutorial_conv_cifar", "tradeoffs_conv_cifar")},
    **{n: ["estimator.trunc_length=3", "schedule.low=6", "schedule.high=9", "suite_tasks=[wine_mlp,quadratic]"]
       for n in ("offline_suite", "celo_offline_suite")},  # two of the suite's tasks: one unroll each
    "generalize_offline_phase2": ["theta=pretrained:generalize_offline", "family.offline_family.num_variants=1",
                                  "family.offline_family.datasets=[wine]", "family.offline_family.horizon=[20,30]",
                                  "estimator.trunc_length=5"],
}
RUN_ELSEWHERE = {"quick_offline": "tests/scripts/test_reproduce_tutorial.py",
                 "celo": "tests/learned/test_celo.py", "celo_phase2": "tests/learned/test_celo.py",
                 "celo2": "tests/learned/test_celo2.py",
                 "population_self_training": "tests/scripts/test_reproduce_self_training.py",
                 "generalize_offline": "tests/scripts/test_ablate_generalization.py"}


def test_every_preset_is_run_by_a_test():
    assert sorted([*SMALLER, *RUN_ELSEWHERE]) == PRESETS


@pytest.mark.parametrize("name", sorted(SMALLER))
def test_every_preset_runs_a_few_outer_iterations(name, tmp_path):
    """Each preset, shrunk (2 problems per task, a few steps, no evaluation), runs 2 outer
    iterations with a finite outer loss; a suite preset trains one unroll per training task. The
    presets of RUN_ELSEWHERE run in the tests named there."""
    import json

    from rich.console import Console

    cfg = compose("meta_train", f"+experiment={name}", *SHRINK, *SMALLER[name])
    summary = COMMANDS["meta-train"].load().run(cfg, tmp_path / "run", Console(quiet=True))
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["outer_iteration"] == 2 and np.isfinite(record["outer/loss"])
    if "suite_tasks" in CLAIMS[name]:
        assert summary["task"].split(",") == list(cfg.suite_tasks) == ["wine_mlp", "quadratic"]
        assert all(record[f"family/{t}/loss"] > 0 for t in cfg.suite_tasks)
