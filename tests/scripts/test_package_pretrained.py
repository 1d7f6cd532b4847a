"""scripts/package_pretrained.py: a finished tiny run packaged as a pretrained optimizer, listed,
loadable as theta=pretrained:<name>, with a card written from the measured files and a check that
reproduces."""
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
