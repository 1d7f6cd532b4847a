import json

import numpy as np
import pytest

from lopt import tasks
from lopt.data.settings import DataSettings
from lopt.errors import ConfigError, UserError
from lopt.evaluation.baselines import BaselineStore, key, key_fields
from lopt.evaluation.tuning import widened
from lopt.optimizers.hand_designed import Adam

TASK = tasks.parse({"name": "q", "kind": "quadratic", "dim": 4})


def fields(**changes):
    task = tasks.parse({"name": "q", "kind": "quadratic", "dim": 4, **changes})
    return key_fields(task, 10, 10, Adam(), "adam", ["lr"], DataSettings())


def test_keys_hold_what_a_baseline_is_for_and_ignore_the_tuned_hyperparameter():
    assert key(fields()) == key(fields())
    assert key(fields(dim=5)) != key(fields())
    assert key(key_fields(TASK, 20, 10, Adam(), "adam", ["lr"], DataSettings())) != key(fields())
    assert key(key_fields(TASK, 10, 3, Adam(), "adam", ["lr"], DataSettings())) != key(fields())  # another horizon
    assert key(key_fields(TASK, 10, 10, Adam(b1=0.8), "adam", ["lr"], DataSettings())) != key(fields())
    assert key(key_fields(TASK, 10, 10, Adam(lr=0.5), "adam", ["lr"], DataSettings())) == key(fields())
    assert key(key_fields(TASK, 10, 10, Adam(), "adam", ["lr"], DataSettings(source="synthetic"))) != key(fields())
    # init_scale was added to the task configs after the key's format: at its default it is not in
    # the key (baselines stored before keep theirs); another value is
    assert "init_scale" not in fields()["task"] and fields(init_scale=2.0)["task"]["init_scale"] == 2.0
    assert key(fields(init_scale=2.0)) != key(fields())


def test_store_round_trip_and_refusals(tmp_path):
    store = BaselineStore(tmp_path)
    curves = np.array([[[1.0, 0.5], [1.0, np.nan]]])
    made = store.document(fields(), [{"lr": 0.1}], curves, 0, None)
    path = store.write(made)
    loaded = store.load(fields(), "make it")
    np.testing.assert_array_equal(loaded["train_loss"], curves)
    assert {k: v for k, v in loaded.items() if k != "train_loss"} == {k: v for k, v in made.items()
                                                                       if k != "train_loss"}
    with pytest.raises(UserError, match=r"No adam baseline for task 'q' .* was made for another configuration "
                                        r"\(task.dim: 4 there, 5 here\) and is not used. Make the missing "
                                        r"baselines with `make it`"):
        store.load(fields(dim=5), "make it")
    # a file renamed to another key is refused, never used
    doc = json.loads(path.read_text())
    path.rename(store.path(fields(dim=5)))
    with pytest.raises(ConfigError, match="was made for another configuration than its name says"):
        store.load(fields(dim=5), "make it")
    assert doc["key"] == key(fields())


def test_a_grid_is_widened_past_the_edge_where_the_best_rate_lies():
    grid = [1e-3, 3e-3, 1e-2]
    assert widened(grid, 3e-3) == []
    np.testing.assert_allclose(widened(grid, 1e-2), [3e-2, 1e-1])
    np.testing.assert_allclose(widened(grid, 1e-3), [1e-4, 3e-4])
