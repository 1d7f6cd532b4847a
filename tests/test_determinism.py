"""Same config + seed -> identical results files, for every command (wall-clock keys aside).

Each command runs twice in this process (tests/io/test_resume.py compares two meta-training processes)."""
import json

import jax
import numpy as np
import pytest
from rich.console import Console

from lopt.commands import baseline_sweep, evaluate, meta_train
from lopt.io.checkpoint import load_tree
from tests.conftest import TINY, compose

SMALL = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_seeds=2",
         "num_steps=4", "eval_every=2", "eval_batches=2", "last_eval_batches=2"]
COMMANDS = {  # command -> (config name, module, overrides, results files)
    "meta-train": ("meta_train", meta_train, TINY, ["metrics.jsonl"]),
    "evaluate": ("evaluate", evaluate, SMALL, ["metrics.jsonl", "curves.json"]),
    "baseline-sweep": ("baseline_sweep", baseline_sweep, [*SMALL, "sweep.lrs=[1e-3,1e-2]"],
                       ["metrics.jsonl", "sweep.json", "best.json"]),
}


def _without_timing(value):
    """A JSON value without its wall-clock entries (perf/..., time/..., ..._s)."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items()
                if not (k.startswith(("perf/", "time/")) or k.endswith("_s"))}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _load(path):
    if path.suffix == ".jsonl":
        return [_without_timing(json.loads(line)) for line in path.read_text().splitlines()]
    return _without_timing(json.loads(path.read_text()))


def _numbers(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [value] if isinstance(value, float) else []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_same_config_and_seed_give_identical_results(command, tmp_path):
    config_name, module, overrides, files = COMMANDS[command]
    for name in ("a", "b"):
        module.run(compose(config_name, *overrides), tmp_path / name, Console(quiet=True))
    for file in files:
        a, b = _load(tmp_path / "a" / file), _load(tmp_path / "b" / file)
        assert json.dumps(a) == json.dumps(b), f"{command}: {file} differs between two runs"  # NaN-safe
        assert sum(np.isfinite(x) for x in _numbers(a)) >= 4  # real numbers were compared
    if command == "meta-train":
        like = meta_train.build(compose(config_name, *overrides)).trainer.lopt.init_theta(jax.random.PRNGKey(0))
        for x, y in zip(*(jax.tree_util.tree_leaves(load_tree(tmp_path / n / "final_theta", like)) for n in "ab")):
            np.testing.assert_array_equal(x, y)
