"""scripts/package_pretrained.py: a finished tiny run packaged as a pretrained optimizer, listed,
loadable as theta=pretrained:<name>, with a card written from the measured files and a check that
reproduces; the card's suite section on fixed numbers."""
import json

import pytest
from rich.console import Console

from lopt import pretrained
from lopt.commands import evaluate
from lopt_cli.reproduction import run_lopt
from tests.conftest import CHEAP, compose
from tests.scripts import load_script

SYNTHETIC = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled"]


def test_a_finished_run_is_packaged_with_its_card_and_a_check_that_reproduces(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_lopt("test", "meta-train", run, CHEAP)
    script = load_script("package_pretrained")
    dest = script.main(["--run", str(run), "--name", "tiny", "--summary", "a tiny test optimizer", "--command",
                        "lopt meta-train ...", "--compute", "seconds", "--root", str(tmp_path / "shipped"),
                        *SYNTHETIC])
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "shipped")
    assert pretrained.names() == ["tiny"] and pretrained.summary("tiny") == "tiny: a tiny test optimizer"
    card = (dest / "card.md").read_text()
    check = json.loads((dest / "check.json").read_text())
    assert "lopt meta-train ..." in card and f"mean final training loss {check['final/eval/train/loss']:.6g}" in card
    cfg = compose("evaluate", "theta=pretrained:tiny", *SYNTHETIC, *check["overrides"])
    out = evaluate.run(cfg, tmp_path / "again", Console(quiet=True))
    assert out["final/eval/train/loss"] == pytest.approx(check["final/eval/train/loss"], rel=check["rtol"])


def test_the_cards_suite_section_states_the_aggregates_and_every_task():
    stat = {"value": 1.2, "ci": [0.9, 1.5]}
    doc = {"num_seeds": 5, "seed": 1, "aggregates": {"speedup_over_adam": {"iqm": stat},
                                                     "loss_ratio": {"iqm": {"value": 0.8, "ci": None}},
                                                     "win_fraction": {"value": 0.5, "ci": [0.0, 1.0]}},
           "tasks": {"a": {"scores": {"speedup_over_adam": 3.0, "loss_ratio": 0.5, "beats_adam": True, "capped": True},
                           "baseline": {"horizon_mult": 3}},
                     "b": {"scores": {"speedup_over_adam": 0.4, "loss_ratio": 1.5, "beats_adam": False},
                           "baseline": {"horizon_mult": 3}}}}
    text = "\n".join(load_script("package_pretrained").suite_section("s", doc))
    assert "### `s` (2 tasks, 5 evaluation seeds, seed stream 1, baselines at [3]x the task length)" in text
    assert "- IQM speedup over tuned Adam: 1.2 [0.9, 1.5]" in text and "- IQM loss ratio: 0.8\n" in text
    assert "- tasks beating tuned Adam: 1 of 2 (fraction 0.5 [0, 1])" in text
    assert "| `a` | >=3 | 0.5 | yes |" in text and "| `b` | 0.4 | 1.5 | no |" in text
