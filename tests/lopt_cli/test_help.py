"""`lopt <command> --help` lists the config groups that command accepts, and only those."""
import os
import subprocess
import sys

import pytest

META_TRAIN_ONLY = ("estimator", "family", "meta_loss", "outer_opt", "schedule", "experiment")


def _groups(command: str, tmp_path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "lopt_cli.main", command, "--help"], cwd=tmp_path,
                         env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("== Config groups (group=option) ==")[1].split("== Config (defaults shown) ==")[0]
    return dict(line.split(": ", 1) for line in section.strip().splitlines())


def test_meta_train_help_lists_its_groups_and_the_experiment_presets(tmp_path):
    groups = _groups("meta-train", tmp_path)
    assert set(groups) == {"data", "distributed", "lopt", "task", "tracking", *META_TRAIN_ONLY}
    assert groups["estimator"] == "es, full_es, merged, pes, tbptt"
    assert "tutorial_conv_cifar" in groups["experiment"].split(", ")


@pytest.mark.parametrize("command, expected", [
    ("evaluate", {"data", "distributed", "lopt", "optimizer", "task", "tracking"}),
    ("baseline-sweep", {"data", "distributed", "optimizer", "task", "tracking"}),
])
def test_evaluate_and_baseline_sweep_help_list_only_their_groups(tmp_path, command, expected):
    groups = _groups(command, tmp_path)
    assert set(groups) == expected
    assert groups["optimizer"] == "adam, nadamw, sgd, sgdm"
