"""scripts/ablate_generalization.py end to end at a tiny size: the recipe meta-trained and the
recipe's untrained architecture, both scored on the smoke suite; the table, the verdict, and a
second call that reuses the finished meta-training."""
import json

import pytest

from tests.scripts import load_script

META = ["--meta", "family.offline_family.num_variants=1", "--meta", "family.offline_family.datasets=[wine]",
        "--meta", "family.offline_family.horizon=[20,30]", "--meta", "num_tasks=2",
        "--meta", "estimator.trunc_length=5", "--meta", "checkpoint_every=0"]
EVAL = [f"--eval={o}" for o in ("num_seeds=2", "suite.tasks.digits_mlp.num_steps=30",
                                "suite.tasks.quadratic.num_steps=20", "suite.lr_range=[1e-2,1]")]
TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled"]


def test_two_ablations_are_meta_trained_scored_and_tabled(tmp_path, capsys):
    script = load_script("ablate_generalization")
    out = tmp_path / "a"
    args = ["--only", "recipe,no_meta_training", "--suite", "smoke", "--outer-iterations", "2", "--horizon-mult", "3",
            "--baselines", str(tmp_path / "baselines"), "--out", str(out), *META, *EVAL, *TINY]
    result = script.main(args)
    doc = json.loads((out / "ablations.json").read_text())
    assert [r["ablation"] for r in doc["rows"]] == ["recipe", "no_meta_training"]
    config = (out / "recipe" / "meta-train" / "config.yaml").read_text()
    assert "fraction_features: true" in config and "outer_iterations: 2" in config
    untrained = json.loads((out / "no_meta_training" / "evaluate" / "suite.json").read_text())
    assert untrained["num_seeds"] == 2 and set(untrained["tasks"]) == {"digits_mlp", "quadratic"}
    recipe, base = doc["rows"]
    assert recipe["num_tasks"] == 2 and 0 <= recipe["wins"] <= 2
    change = base["iqm_speedup"]["value"] - recipe["iqm_speedup"]["value"]
    assert "| `no_meta_training` |" in doc["table"] and f"{change:+.3g} |" in doc["table"]
    printed = capsys.readouterr().out
    assert doc["table"] in printed and "verdict (outcome target): the recipe beats tuned Adam on smoke" in printed
    assert result["verdicts"][0]["reproduced"] == (recipe["iqm_speedup"]["value"] >= 1.0 and recipe["wins"] >= 5)
    again = script.main(["--only", "recipe", *args[2:]])  # finished: not meta-trained again
    assert list(again["wall_s"]) == ["recipe/evaluate"]
    assert again["rows"][0]["iqm_speedup"] == recipe["iqm_speedup"]


def test_an_unknown_ablation_is_refused(capsys):
    with pytest.raises(SystemExit):
        load_script("ablate_generalization").main(["--only", "recipe,nope"])
    assert "--only nope: valid ablations are recipe, no_fraction_features" in capsys.readouterr().err
