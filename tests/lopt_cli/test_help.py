"""`lopt <command> --help` lists the config groups that command accepts, and only those, with the
config's defaults; meta-train's lists every experiment preset."""

import pytest

from tests import cli_process
from tests.lopt_cli.test_experiments import PRESETS

META_TRAIN_ONLY = ("estimator", "family", "meta_loss", "outer_opt", "population", "schedule", "experiment")


def _help(command: str, cwd) -> str:
    out = cli_process.run(command, "--help", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _groups(stdout: str) -> dict[str, str]:
    section = stdout.split("== Config groups (group=option) ==")[1].split("\n== ")[0]  # up to the next section
    return dict(line.split(": ", 1) for line in section.strip().splitlines())


@pytest.fixture(scope="module")
def meta_train_help(tmp_path_factory) -> str:
    """`lopt meta-train --help`, run once for the tests that read it."""
    return _help("meta-train", tmp_path_factory.mktemp("help"))


def test_meta_train_help_lists_its_groups_and_the_experiment_presets(meta_train_help):
    groups = _groups(meta_train_help)
    assert set(groups) == {"data", "distributed", "lopt", "suite", "task", "tracking", *META_TRAIN_ONLY}
    assert groups["estimator"] == "es, full_es, merged, pes, tbptt"
    assert "tutorial_conv_cifar" in groups["experiment"].split(", ")


def test_meta_train_help_shows_groups_and_config(meta_train_help):
    for text in ("task: breast_cancer_mlp, cifar_ae, cifar_conv32, conv_cifar, diabetes_mlp, digits_mlp, fmnist_mlp, "
                 "imagenet16_mlp, lm1b_lstm, mnist1d_conv, mnist1d_mlp, patches_ae, quadratic, stdlib_lstm, two_minima, "
                 "wine_mlp", "estimator: es, full_es, merged, pes, tbptt",
                 "outer_opt: adam, adam_clip, adamw, lopt, sgd", "num_tasks: 8", "trunc_length: 20"):
        assert text in meta_train_help


def test_meta_train_help_lists_every_preset(meta_train_help):
    assert f"experiment: {', '.join(PRESETS)}" in meta_train_help
    assert "lopt meta-train +experiment=tutorial_conv_cifar" in meta_train_help


@pytest.mark.parametrize("command, expected", [
    ("evaluate", {"data", "distributed", "lopt", "optimizer", "suite", "task", "tracking"}),
    ("baseline-sweep", {"data", "distributed", "optimizer", "suite", "task", "tracking"}),
])
def test_evaluate_and_baseline_sweep_help_list_only_their_groups(tmp_path, command, expected):
    groups = _groups(_help(command, tmp_path))
    assert set(groups) == expected
    assert groups["optimizer"] == "adam, nadamw, sgd, sgdm"
