"""The figures a researcher reads: losses on log axes, labels in words, titles naming the task and
the run, the best sweep configuration marked, the tuned baseline's hyperparameters in the legend."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lopt import figures
from lopt.commands import evaluated
from lopt.figures import curves as curves_png
from lopt.figures import sweep as sweep_png
from lopt.io.results import pyplot
from lopt.io.tracking import run_name
from lopt.optimizers.hand_designed import Adam
from lopt.training import comparison
from lopt.training.sweep import Configuration, Stat

XS = [0, 5, 10]


def _texts(fig):
    """Every label, tick-free text and legend entry of `fig`."""
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()] + [ax.get_legend().get_title().get_text()]
    return [t for t in out if t]


def _curves(start, end, seeds=2):
    return [list(np.geomspace(start, end, len(XS)) * (1 + 0.01 * s)) for s in range(seeds)]


def _config(lr, start, end):
    c = _curves(start, end)
    final, mean = float(np.mean([v[-1] for v in c])), float(np.mean(c))
    return Configuration({"lr": lr, "b1": 0.9}, 0, {"final/eval/train/loss": Stat(final, 0.0),
                                                    "mean/eval/train/loss": Stat(mean, 0.0),
                                                    "final/eval/test/loss": Stat(final, 0.0)},
                         {"eval/train/loss": c, "eval/test/loss": c})


HEADER = {"task": "digits_mlp", "optimizer": "adam", "criterion": "mean_train_loss", "search": "grid",
          "swept": ["lr"], "num_seeds": 2, "num_steps": 10, "eval/xs": XS}
RESULTS = [_config(3e-2, 2.3, 0.01), _config(1e-2, 2.3, 0.3), _config(1e-3, 2.3, 2.0)]  # ranked, best first


def test_labels_in_words_and_losses_log_scaled():
    assert figures.metric_label("eval/train/loss") == "training loss (eval batches)"
    assert figures.metric_label("eval/test/accuracy") == "test accuracy"
    assert "/" not in figures.metric_label("some/new/metric")
    fig, (ax, neg) = pyplot().subplots(1, 2)
    figures.metric_axis(ax, "eval/test/loss", [2.3, 0.01])
    figures.metric_axis(neg, "eval/test/loss", [-1.0, 2.0])  # a loss that goes negative stays linear
    assert ax.get_yscale() == "log" and neg.get_yscale() == "linear"
    pyplot().close(fig)


def test_run_name_keeps_a_multirun_jobs_sweep():
    assert figures.title("digits_mlp", "outputs/evaluate/2026-01-01/12-00-00_abc123") == \
        "digits_mlp — 12-00-00_abc123"
    assert run_name(Path("multirun/evaluate/2026-01-01/12-00-00_abc123/3")) == "12-00-00_abc123/3"


def test_a_title_names_a_few_tasks_and_counts_many():
    assert figures.tasks_label(["a", "b", "c"]) == "a,b,c"
    names = [f"offline_family_{i}" for i in range(12)]
    assert figures.tasks_label(names) == "12 tasks (offline_family_0 … offline_family_11)"


def test_evaluate_figure(tmp_path):
    sweep_best = tmp_path / "best.json"
    sweep_best.write_text(json.dumps({**HEADER, "configuration": RESULTS[0].to_json()}))
    baseline = comparison.load_baseline(sweep_best, "digits_mlp", XS)
    c = _curves(2.3, 1.0)
    result = {"task": "digits_mlp", "optimizer": "adam", "learned": False, "checkpoint": None, "eval/xs": XS,
              "curves": {"eval/train/loss": {"per_seed": c}, "eval/test/loss": {"per_seed": c},
                         "eval/test/accuracy": {"per_seed": [[0.1, 0.5, 0.9]] * 2}}}
    run_dir = tmp_path / "12-00-00_abc123"
    label = evaluated.HandDesignedEvaluated("adam", Adam(lr=1e-3)).label
    fig = curves_png.figure(result, label, baseline, run_dir)
    texts = _texts(fig)
    assert "digits_mlp" in fig._suptitle.get_text() and "12-00-00_abc123" in fig._suptitle.get_text()
    losses, accuracy = fig.axes[:2], fig.axes[2]
    assert [ax.get_yscale() for ax in losses] == ["log", "log"] and accuracy.get_yscale() == "linear"
    assert [ax.get_ylabel() for ax in fig.axes] == ["training loss (eval batches)", "test loss", "test accuracy"]
    assert not any("/" in ax.get_ylabel() for ax in fig.axes)
    legend = " | ".join(texts)
    assert "adam lr=0.001" in legend and "tuned adam lr=0.03" in legend  # both sides' hyperparameters
    assert "std over seeds" in legend  # what the shaded bands are
    pyplot().close(fig)


def test_sweep_figure_marks_the_best_configuration(tmp_path):
    fig = sweep_png.figure(RESULTS, HEADER, tmp_path / "12-00-00_abc123")
    curves_ax, lr_ax = fig.axes
    title = fig._suptitle.get_text()
    assert "digits_mlp" in title and "12-00-00_abc123" in title
    assert curves_ax.get_yscale() == "log" and lr_ax.get_yscale() == "log" and lr_ax.get_xscale() == "log"
    assert not any("/" in t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel()))
    # the best configuration: labelled in the curves' legend, a star at its learning rate
    assert any(t.startswith("best: lr=0.03") for t in _texts(fig))
    (star,) = [line for line in lr_ax.get_lines() if line.get_marker() == "*"]
    assert star.get_xdata()[0] == pytest.approx(3e-2)
    assert star.get_ydata()[0] == pytest.approx(RESULTS[0].metrics["mean/eval/train/loss"].mean)
    assert any("std over 2 seeds" in t for t in _texts(fig))
    pyplot().close(fig)


def _tutorial():
    path = Path(__file__).resolve().parents[2] / "scripts" / "reproduce_tutorial.py"
    spec = importlib.util.spec_from_file_location("reproduce_tutorial", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_figures(tmp_path, monkeypatch):
    rt = _tutorial()
    saved = {}
    monkeypatch.setattr(rt, "save_figure", lambda fig, path: saved.__setitem__(Path(path).name, fig))
    meta = tmp_path / "meta"
    meta.mkdir()
    records = [{"outer_iteration": i, "outer/loss": 2.3 / (1 + i)} for i in range(1, 8)]
    records[3]["outer/loss"] = None  # a non-finite loss (null in JSON)
    (meta / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rt._plot_meta_training(meta, tmp_path / "meta_training.png", "digits_mlp", tmp_path, "small_fc_lopt")
    sweep = {**HEADER, "configurations": [r.to_json() for r in RESULTS]}  # sweep.json
    c = _curves(2.3, 0.5)
    curves = {"eval/xs": XS, "curves": {"eval/train/loss": {"mean": list(np.mean(c, 0)), "std": list(np.std(c, 0)),
                                                             "per_seed": c}}}
    rt._plot_learned_vs_adam(sweep, curves, tmp_path / "learned_vs_adam.png", tmp_path, "small_fc_lopt")
    for name, fig in saved.items():
        (ax,) = fig.axes
        assert ax.get_yscale() == "log", name
        assert "digits_mlp" in fig._suptitle.get_text() and tmp_path.name in fig._suptitle.get_text(), name
        assert "/" not in ax.get_xlabel() + ax.get_ylabel(), name
        pyplot().close(fig)
    (line,) = saved["meta_training.png"].axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 3, 5, 6, 7]  # every finite logged point, one marker each
    assert line.get_marker() == "o" and "7 logged" in line.get_label() and "1 non-finite" in line.get_label()
