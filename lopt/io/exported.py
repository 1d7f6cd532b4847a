"""A trained optimizer as a self-contained folder (`lopt export <theta> <dir>`), laid out as a
finished meta-train run so that every command and `lopt.learned.export.optimizer(<dir>)` load it,
offline:

    config.yaml     the run's config (its `lopt` node is the architecture)
    final_theta/    the meta-parameters (an orbax checkpoint; the run's best_theta/ when that was given)
    README.md       the model card: YAML front matter as model hubs read it, the training command, the
                    compute, the run's own evaluations and the calibrated scores given with --scores
    SHA256SUMS      one SHA-256 per file (`sha256sum -c SHA256SUMS` checks them; so does loading)

The folder is written whole or not at all: it is assembled under a temporary name beside `out` and
renamed into place. Nothing is uploaded.
"""
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax

from lopt.errors import UserError
from lopt.io import model_card, theta_files

CHECKSUMS = "SHA256SUMS"
CARD = "README.md"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def verify(root: Path) -> None:
    """Check every file `root`'s SHA256SUMS lists (no such file: nothing to check); a `UserError`
    naming the first file that is missing or differs."""
    listed = root / CHECKSUMS
    if not listed.is_file():
        return
    for line in listed.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = root / name
        if not path.is_file():
            raise UserError(f"{path} is missing: the exported optimizer {root} is incomplete ({CHECKSUMS} lists it). "
                            f"Export it again with `lopt export`.")
        if _sha256(path) != digest:
            raise UserError(f"{path} does not match its SHA-256 in {listed}: the exported optimizer {root} was "
                            f"changed or damaged after export. Export it again with `lopt export`.")


def _card(theta: str, theta_dir: Path, root: Path, architecture: dict, num_meta_params: int,
          scores: Sequence[Path]) -> str:
    """README.md of the export `root` of `theta` (read from `theta_dir`)."""
    run = theta_files.run_of(theta_dir)
    name = root.name
    fields = {"library_name": "lopt", "tags": ["learned-optimizer", "jax", "optax", architecture["name"]],
              "lopt": {"architecture": architecture["name"], "meta_parameters": num_meta_params,
                       "exported_from": theta, "theta": theta_dir.name}}
    lines = [f"# {name}: a learned optimizer ({architecture['name']}, {num_meta_params:,} meta-parameters)", "",
             "## Use it", "", "```python", "from lopt.learned.export import optimizer", "",
             f'tx = optimizer("{name}", num_steps=1000)   # the path of this folder; an optax transformation',
             "updates, state = tx.update(grads, state, params, loss=loss)", "```", "",
             f"or `theta={name}` in any `lopt` command.", ""]
    shipped = run / "card.md"  # a shipped pretrained optimizer's card: how it was made and its scores
    if shipped.is_file():
        lines += [*shipped.read_text().partition("\n")[2].strip().splitlines(), ""]
    else:
        command, compute = model_card.command(run), model_card.compute(run)
        lines += ["## How it was made", ""]
        lines += ["```bash", command, "```", ""] if command else ["The run recorded no command line.", ""]
        lines += [f"Compute: {compute} (the machine is not recorded).", ""] if compute else []
        lines += model_card.in_run_scores(run)
    if scores:
        lines += ["## Scores (calibrated: `lopt evaluate suite=<suite>`)", ""]
        for path in scores:
            doc = json.loads(path.read_text())
            lines += model_card.suite_section(doc["suite"], doc)
    return model_card.front_matter(fields) + "\n".join(lines)


def write(theta: str, out: Path, scores: Sequence[Path] = ()) -> Path:
    """Export the trained optimizer `theta` names (a run directory, its final_theta/ or best_theta/,
    or `pretrained:<name>`) to the new folder `out`, with the suite.json files `scores` (or the
    evaluate run directories holding them) on its card. Bad input is a `UserError`, before anything
    is written."""
    from lopt.learned.export import load_trained

    path = theta_files.theta_path(theta)
    assert path is not None
    run = theta_files.run_of(path)
    _, loaded = load_trained(theta)  # checks the architecture and reads every array
    architecture = theta_files.recorded_architecture(path, theta, "")
    docs = [p / "suite.json" if p.is_dir() else p for p in map(Path, scores)]
    for doc in docs:
        if not doc.is_file():
            raise UserError(f"--scores {doc}: no such file. Give the suite.json (or the run directory) of a "
                            f"`lopt evaluate suite=<suite> theta={theta}` run.")
        scored = json.loads(doc.read_text()).get("checkpoint")
        if scored is None or Path(scored).resolve() != path.resolve():
            raise UserError(f"--scores {doc} scored theta {scored}, not {path}: give the evaluation of the "
                            f"optimizer you export (`lopt evaluate suite=<suite> theta={theta}`).")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not an empty directory: export into a new folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        shutil.copy(run / "config.yaml", tmp / "config.yaml")
        shutil.copytree(path, tmp / "final_theta")
        count = sum(int(a.size) for a in jax.tree_util.tree_leaves(loaded))
        (tmp / CARD).write_text(_card(theta, path, out, architecture, count, docs))
        (tmp / CHECKSUMS).write_text("".join(f"{_sha256(p)}  {p.relative_to(tmp)}\n" for p in _files(tmp)))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
