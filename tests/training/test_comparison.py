import json

import numpy as np
import pytest

from lopt.errors import ConfigError
from lopt.training import comparison

XS = [0, 5, 10]


def _sweep_doc(task="digits_mlp", xs=XS):
    best = {"hyperparameters": {"lr": 0.01, "b1": 0.9}, "diverged": False,
            "curves": {"eval/train/loss": [[2.0, 1.0, 0.5], [2.0, 1.2, 0.7]], "train/loss": [[0.0] * 10] * 2}}
    worse = {**best, "hyperparameters": {"lr": 1.0, "b1": 0.9}}
    return {"task": task, "optimizer": "adam", "swept": ["lr"], "eval/xs": xs, "configurations": [best, worse]}


def test_steps_to_reach_is_the_first_evaluation_at_or_below_the_target():
    assert comparison.steps_to_reach(np.array([3.0, 1.0, 0.5, 0.7]), [0, 5, 10, 15], 0.6) == 10
    assert comparison.steps_to_reach(np.array([3.0, 1.0]), [0, 5], 0.5) is None


def test_comparison_against_the_best_configuration_of_a_sweep_json(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(_sweep_doc()))
    baseline = comparison.load_baseline(path, "digits_mlp", XS)
    assert baseline.label == "adam lr=0.01"  # the first (best) configuration, its swept hyperparameters
    evaluated = {"eval/train/loss": np.array([[2.0, 0.6, 0.3], [2.0, 0.4, np.nan]])}  # a diverged seed is ignored
    c = comparison.compare(evaluated, baseline)
    assert c["target_loss"] == pytest.approx(0.6)
    assert c["baseline"] == {"final_loss": pytest.approx(0.6), "mean_loss": pytest.approx((2.0 + 1.1 + 0.6) / 3),
                             "steps_to_target": 10}
    assert c["evaluated"] == {"final_loss": pytest.approx(0.3), "mean_loss": pytest.approx((2.0 + 0.5 + 0.3) / 3),
                              "steps_to_target": 5}
    assert comparison.flat(c)["compare/evaluated/steps_to_target"] == 5


def test_best_json_is_read_the_same_way(tmp_path):
    doc = _sweep_doc()
    best = {**{k: v for k, v in doc.items() if k != "configurations"}, "configuration": doc["configurations"][0]}
    (tmp_path / "best.json").write_text(json.dumps(best))
    assert comparison.load_baseline(tmp_path / "best.json", "digits_mlp", XS).label == "adam lr=0.01"


@pytest.mark.parametrize("content, task, xs, message", [
    (None, "digits_mlp", XS, "does not exist"),
    ("not json", "digits_mlp", XS, "is not a readable JSON file"),
    (json.dumps({"a": 1}), "digits_mlp", XS, "neither a 'configuration' nor a 'configurations' entry"),
    (json.dumps(_sweep_doc()), "conv_cifar", XS, "is a sweep on task 'digits_mlp', but this evaluation trains 'conv_cifar'"),
    (json.dumps(_sweep_doc()), "digits_mlp", [0, 10, 20], "evaluated at steps 0..10 every 5 but this evaluation records"),
])
def test_bad_baselines_are_clear_config_errors(tmp_path, content, task, xs, message):
    path = tmp_path / "best.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        comparison.load_baseline(path, task, xs)


def test_the_summary_says_never_and_diverged_where_the_json_keeps_null_and_nan(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(_sweep_doc()))
    baseline = comparison.load_baseline(path, "digits_mlp", XS)
    evaluated = {"eval/train/loss": np.array([[2.0, 1.0, 0.9], [2.0, 1.1, 0.8]])}  # never reaches 0.6
    c = comparison.compare(evaluated, baseline)
    assert c["evaluated"]["steps_to_target"] is None  # null in curves.json
    flat = comparison.flat(c)
    assert flat["compare/evaluated/steps_to_target"] == "never" and flat["compare/baseline/steps_to_target"] == 10


def test_every_seed_diverged_is_said_so_without_numpy_warnings(tmp_path, recwarn):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(_sweep_doc()))
    baseline = comparison.load_baseline(path, "digits_mlp", XS)
    evaluated = {"eval/train/loss": np.array([[2.0, np.nan, np.nan], [2.0, np.inf, np.nan]])}
    c = comparison.compare(evaluated, baseline)
    assert np.isnan(c["evaluated"]["final_loss"]) and c["evaluated"]["steps_to_target"] is None
    flat = comparison.flat(c)
    assert flat["compare/evaluated/final_loss"] == flat["compare/evaluated/mean_loss"] == "diverged"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_finite_mean_ignores_diverged_seeds():
    a = np.array([[1.0, np.nan, np.inf], [3.0, 2.0, np.nan]])
    np.testing.assert_array_equal(comparison.finite_mean(a), [2.0, 2.0, np.nan])


@pytest.mark.parametrize("given, message", [
    ("", "compare_to='' is empty: pass the best.json or sweep.json"),
    (" ", "compare_to=' ' is empty"),
])
def test_an_empty_compare_to_is_named_as_given(given, message):
    with pytest.raises(ConfigError, match=message):
        comparison.load_baseline(given, "digits_mlp", XS)


def test_a_directory_as_compare_to_asks_for_its_json(tmp_path):
    with pytest.raises(ConfigError, match="is a directory: pass the best.json or sweep.json"):
        comparison.load_baseline(tmp_path, "digits_mlp", XS)
