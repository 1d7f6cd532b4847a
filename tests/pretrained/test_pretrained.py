"""Shipped pretrained optimizers: theta=pretrained:<name> resolves to the packaged run, the one-line
optax transformation is the learned optimizer with its theta, --help lists them, and every shipped
optimizer reproduces the small-task score its card states."""
import json

import jax
import numpy as np
import pytest
from omegaconf import OmegaConf
from rich.console import Console

from lopt import learned, pretrained
from lopt.commands import evaluate
from lopt.errors import UserError
from lopt.io import checkpoint, theta_files
from lopt.learned.export import as_optax, optimizer
from lopt_cli.job import _help_pretrained
from tests import cli_process
from tests.conftest import compose
from tests.learned.lopt_checks import PARAMS, grads


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A packaged optimizer `toy` (celo with fraction features, a perturbed theta) in a stand-in root."""
    node = {"name": "celo", "phase": 1, "fraction_features": True, "step_mult": 0.01}
    lopt = learned.build(node)
    theta = jax.tree_util.tree_map(lambda t: t + 0.1, lopt.init_theta(jax.random.PRNGKey(3)))
    run = tmp_path / "toy"
    checkpoint.save_tree(run / "final_theta", theta)
    OmegaConf.save({"lopt": node}, run / "config.yaml")
    (run / "card.md").write_text("# toy: a test optimizer\n\nmore\n")
    (tmp_path / "not_shipped").mkdir()  # no final_theta/: not listed
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    return lopt, theta


def test_pretrained_names_resolve_to_the_packaged_run(shipped):
    assert pretrained.names() == ["toy"] and pretrained.summary("toy") == "toy: a test optimizer"
    assert theta_files.theta_path("pretrained:toy") == pretrained.ROOT / "toy" / "final_theta"
    assert theta_files.stored_architecture("pretrained:toy")["fraction_features"] is True
    with pytest.raises(UserError, match=r"theta=pretrained:nope is not a shipped pretrained optimizer\. "
                                        r"Valid choices: pretrained:toy\."):
        theta_files.theta_path("pretrained:nope")


def test_evaluate_takes_theta_pretrained_with_its_architecture(shipped):
    lopt, _ = shipped
    c = evaluate.build(compose("evaluate", "theta=pretrained:toy", "tracking.mode=disabled"))
    assert c.evaluated.architecture == lopt and c.evaluated.checkpoint == pretrained.ROOT / "toy" / "final_theta"


def test_the_one_line_optax_optimizer_is_the_learned_optimizer_with_its_theta(shipped):
    lopt, theta = shipped
    params = jax.tree_util.tree_map(np.asarray, PARAMS)

    def two_updates(tx):
        state, out, p = tx.init(params), [], params
        for i in range(2):
            updates, state = tx.update(grads(i), state, p, loss=1.0)
            p = jax.tree_util.tree_map(lambda a, u: a + u, p, updates)
            out.append(updates)
        return out

    want = two_updates(as_optax(lopt, theta, 10))
    for given in ("pretrained:toy", pretrained.ROOT / "toy", pretrained.ROOT / "toy" / "final_theta"):  # a run too
        got = two_updates(optimizer(given, num_steps=10))
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    assert max(float(np.abs(u).max()) for u in jax.tree_util.tree_leaves(want)) > 0


def test_the_one_call_refuses_a_theta_without_the_config_naming_its_architecture(shipped, tmp_path):
    checkpoint.save_tree(tmp_path / "bare" / "final_theta", shipped[1])
    with pytest.raises(UserError, match=r"has no config.yaml naming its learned optimizer: give a meta-train run"):
        optimizer(tmp_path / "bare")
    with pytest.raises(UserError, match=r"does not exist: give a meta-train run directory"):
        optimizer(tmp_path / "nope")


def test_help_lists_the_shipped_optimizers_for_commands_that_take_a_theta(shipped):
    assert "theta=pretrained:toy: toy: a test optimizer" in _help_pretrained(_root_=OmegaConf.create({"theta": None}))
    assert _help_pretrained(_root_=OmegaConf.create({"seed": 0})) == ""


def test_lopt_evaluate_help_lists_every_shipped_optimizer():
    done = cli_process.run("evaluate", "--help")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "== Pretrained learned optimizers (theta=pretrained:<name>) ==" in out
    assert all(f"theta=pretrained:{name}: " in out for name in pretrained.names())


@pytest.mark.parametrize("name", pretrained.names())
def test_each_shipped_optimizer_reproduces_its_cards_small_task_score(name, tmp_path):
    """check.json: the overrides of one `lopt evaluate theta=pretrained:<name> ...` run, the mean
    final training loss the card reports for it, and the relative tolerance."""
    check = json.loads((pretrained.path(name) / "check.json").read_text())
    cfg = compose("evaluate", f"theta=pretrained:{name}", "tracking.mode=disabled", *check["overrides"])
    out = evaluate.run(cfg, tmp_path, Console(quiet=True))
    assert out["final/eval/train/loss"] == pytest.approx(check["final/eval/train/loss"], rel=check["rtol"])
