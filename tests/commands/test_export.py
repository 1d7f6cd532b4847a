"""`lopt export`: a shipped optimizer exported to a folder that trains a problem in a plain optax loop
exactly as `lopt evaluate` trains it, checked file by file; bad input leaves nothing behind."""
import hashlib
import json

import jax
import numpy as np
import optax
import pytest
import yaml

from lopt import commands
from lopt.commands import export
from lopt.errors import UserError
from lopt.io import checksums
from lopt.learned.export import optimizer
from lopt.training.curves import CurveSettings, seed_keys
from lopt_cli.main import main

SHIPPED = "pretrained:generalize_offline"
TASK = ["task=digits_mlp", "task.hidden=[8]", "data.source=synthetic", "data.synthetic_examples=64"]
STEPS, EVERY, SEED = 20, 5, 3


def lopt(*args: str) -> int:
    """`lopt *args` in this process (Hydra's logging setup left out: it closes pytest's streams)."""
    return main([*args] if args[0] == "export" else [*args, "hydra/job_logging=none", "hydra/hydra_logging=none"])


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "mine"
    assert lopt("export", SHIPPED, str(out)) == 0
    return out


def test_the_folder_holds_theta_config_card_and_a_checksum_per_file(export_dir):
    files = sorted(str(p.relative_to(export_dir)) for p in export_dir.rglob("*") if p.is_file())
    listed = dict(reversed(line.split("  ")) for line in (export_dir / "SHA256SUMS").read_text().splitlines())
    assert sorted(listed) == [f for f in files if f != "SHA256SUMS"]
    for name, digest in listed.items():
        assert hashlib.sha256((export_dir / name).read_bytes()).hexdigest() == digest
    card = (export_dir / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])  # the front matter
    assert meta["library_name"] == "lopt" and meta["lopt"]["architecture"] == "celo"
    assert meta["lopt"]["meta_parameters"] == 35839 and meta["lopt"]["exported_from"] == SHIPPED
    assert "lopt meta-train +experiment=generalize_offline" in card  # the shipped card's command and scores
    assert "IQM speedup over tuned Adam: 0.234 [0.206, 0.265]" in card
    assert yaml.safe_load((export_dir / "config.yaml").read_text())["lopt"]["name"] == "celo"


def test_the_one_call_optimizer_trains_as_lopt_evaluate_does(export_dir, tmp_path, monkeypatch):
    """A user's optax loop with `optimizer(<export>)` on the same seed (init, batches) as `lopt evaluate
    theta=<export> seed=3 num_seeds=1`: the same training losses, step by step."""
    monkeypatch.chdir(tmp_path)
    args = [*TASK, f"theta={export_dir}", f"seed={SEED}", "num_seeds=1", f"num_steps={STEPS}", f"eval_every={EVERY}"]
    assert lopt("evaluate", *args, "tracking.mode=disabled", "hydra.run.dir=eval") == 0
    evaluated = json.loads((tmp_path / "eval" / "curves.json").read_text())["curves"]["train/loss"]["mean"]

    c = commands.build("evaluate", args)
    task, data = c.task, c.load_data()
    tx = optimizer(export_dir, num_steps=STEPS)
    k_init, k_train, _ = jax.random.split(seed_keys(jax.random.PRNGKey(SEED), CurveSettings(num_seeds=1))[0], 3)
    params = task.init(k_init)
    state = tx.init(params)

    @jax.jit
    def step(params, state, key):
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(data, key))
        updates, state = tx.update(grads, state, params, loss=loss)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for i in range(STEPS // EVERY):
        for key in jax.random.split(jax.random.fold_in(k_train, i), EVERY):
            params, state, loss = step(params, state, key)
            losses.append(float(loss))
    assert losses[-1] < 0.9 * losses[0]  # it trains
    np.testing.assert_allclose(losses, evaluated, rtol=1e-4)


def test_a_damaged_export_is_refused_by_every_loader(export_dir, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    assert lopt("export", str(export_dir), str(damaged)) == 0  # an export exports again
    victim = next(p for p in sorted((damaged / "final_theta").rglob("*")) if p.is_file() and p.stat().st_size > 8)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{victim} does not match its SHA-256"):
        optimizer(damaged)
    capsys.readouterr()
    assert lopt("evaluate", *TASK, f"theta={damaged}", "num_seeds=1", "num_steps=5", "eval_every=5",
                "tracking.mode=disabled", f"hydra.run.dir={tmp_path / 'run'}") == 2
    assert "does not match its SHA-256" in capsys.readouterr().err
    victim.unlink()
    with pytest.raises(UserError, match=f"{victim} is missing"):
        optimizer(damaged)


@pytest.mark.parametrize("args, message", [
    (["nowhere", "{tmp}/out"], "theta='nowhere' does not exist"),
    ([SHIPPED, "{tmp}/full"], "already exists and is not an empty directory"),
    ([SHIPPED, "{tmp}/out", "--scores", "{tmp}/none"], "--scores {tmp}/none/suite.json: no such file"),
    ([SHIPPED, "{tmp}/out", "--scores", "{tmp}/other.json"], "scored theta /elsewhere/final_theta, not "),
])
def test_bad_input_is_one_paragraph_and_writes_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("kept")
    (tmp_path / "none").mkdir()
    (tmp_path / "other.json").write_text(json.dumps({"checkpoint": "/elsewhere/final_theta"}))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert lopt("export", *(a.format(tmp=tmp_path) for a in args)) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no folder, no partial one
    assert (tmp_path / "full" / "mine.txt").read_text() == "kept"


def test_export_is_no_library_command():
    with pytest.raises(UserError, match="takes plain arguments"):
        commands.build("export")
    assert checksums.CHECKSUMS == "SHA256SUMS" and export.CARD == "README.md"
