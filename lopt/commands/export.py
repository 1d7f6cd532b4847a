"""`lopt export <theta> <dir>`: a trained optimizer as a self-contained folder, laid out as a
finished meta-train run so that every command (`theta=<dir>`) and
`lopt.learned.export.optimizer(<dir>)` load it, offline. Its arguments are plain (no Hydra config).

    config.yaml     the run's config (its `lopt` node is the architecture)
    final_theta/    the meta-parameters (an orbax checkpoint; the run's best_theta/ when that was given)
    README.md       the model card: YAML front matter as model hubs read it, the training command, the
                    compute, the run's own evaluations and the calibrated scores given with --scores
    SHA256SUMS      one SHA-256 per file (`sha256sum -c SHA256SUMS` checks them; so does loading)

The folder is written whole or not at all: it is assembled under a temporary name beside `out` and
renamed into place. Nothing is uploaded.
"""
import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax

from lopt.errors import UserError
from lopt.evaluation import model_card
from lopt.io import checksums, theta_files

CARD = "README.md"
DESCRIPTION = ("Write a trained optimizer (a meta-train run, its best_theta/, or pretrained:<name>) to a new folder: "
               "its config, theta, a model card and a SHA-256 per file, loadable offline by "
               "lopt.learned.export.optimizer(<dir>) and by every command as theta=<dir>.")


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
        checksums.write(tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str]) -> int:
    """Parse `argv` and export; bad input raises a `UserError` (argparse's own errors exit 2)."""
    p = argparse.ArgumentParser(prog="lopt export", description=DESCRIPTION)
    p.add_argument("theta", help="a meta-train run directory, its final_theta/ or best_theta/, or pretrained:<name>")
    p.add_argument("out", type=Path, help="the folder to create (new, or an empty directory)")
    p.add_argument("--scores", action="append", default=[], type=Path, metavar="EVALUATE_RUN",
                   help="the run directory (or suite.json) of `lopt evaluate suite=<suite> theta=<theta>`, "
                        "repeatable: its calibrated scores, with their intervals, go on the card")
    a = p.parse_args(argv)
    out = write(a.theta, a.out, a.scores)
    print(f"Exported {a.theta} to {out}: {', '.join(sorted(f.name for f in out.iterdir()))}.\n"
          f'Load it with: from lopt.learned.export import optimizer; tx = optimizer("{out}", num_steps=...)')
    return 0
