"""Package a finished meta-train run as a shipped pretrained optimizer (`lopt/pretrained/<name>/`),
with a model card written from measured files only.

    python scripts/package_pretrained.py --run <meta-train run> --name <name> \
        --command "lopt meta-train +experiment=generalize_offline ..." --compute "2 h 40 min, 2-core CPU" \
        --suite offline_small=<evaluate dir>/suite.json --suite offline_heldout=<evaluate dir>/suite.json \
        --tutorial <evaluate dir with compare_to>/curves.json

Copies the run's config.yaml and final_theta/; runs the card's small-task check (`lopt evaluate
theta=pretrained:<name>` on CHECK, the numbers tests/pretrained reproduces) and writes check.json;
writes card.md: the one-line summary, the command, the compute and machine, and each suite's
aggregates with their 95% intervals and per-task speedups, and the tutorial task's comparison.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from lopt import pretrained
from lopt.evaluation.model_card import suite_section
from lopt_cli.reproduction import run_lopt

SCRIPT = "package_pretrained"
CHECK = ["task=digits_mlp", "num_steps=200", "num_seeds=3", "seed=0"]  # the card's small-task check (default)
RTOL = 0.01  # float rounding across CPUs; a changed optimizer moves the loss by far more


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a finished meta-train run directory")
    p.add_argument("--name", required=True, help="the name it ships under (theta=pretrained:<name>)")
    p.add_argument("--summary", required=True, help="the card's one-line summary (shown by --help)")
    p.add_argument("--command", required=True, help="the exact command(s) that produced the run")
    p.add_argument("--compute", required=True, help="wall time and machine of the meta-training")
    p.add_argument("--suite", action="append", default=[], help="NAME=<evaluate dir>/suite.json, repeatable")
    p.add_argument("--tutorial", type=Path, default=None,
                   help="curves.json of `lopt evaluate theta=<run> task=digits_mlp compare_to=<sweep>/best.json`")
    p.add_argument("--note", action="append", default=[], help="a line the card adds under its scores")
    p.add_argument("--check", nargs="+", default=CHECK, metavar="OVERRIDE",
                   help=f"the small-task check's evaluate overrides (default: {' '.join(CHECK)}); shorter for an "
                        "optimizer whose longer trainings differ by more than the tolerance across XLA's compile "
                        "options")
    p.add_argument("--root", type=Path, default=pretrained.ROOT, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help="extra overrides of the check's evaluate (e.g. tracking.mode=...)")
    a = p.parse_args(argv)
    if not (a.run / "final_theta").is_dir():
        sys.exit(f"{SCRIPT}: --run {a.run} has no final_theta/: give a finished meta-train run.")
    dest = a.root / a.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy(a.run / "config.yaml", dest / "config.yaml")
    shutil.copytree(a.run / "final_theta", dest / "final_theta")
    check_dir = a.run.parent / f"{a.run.name}_check"
    run_lopt(SCRIPT, "evaluate", check_dir, [f"theta={dest}", *a.check, *a.overrides])
    loss = json.loads((check_dir / "curves.json").read_text())["summary"]["final/eval/train/loss"]
    (dest / "check.json").write_text(json.dumps({"overrides": a.check, "final/eval/train/loss": loss, "rtol": RTOL},
                                                indent=1) + "\n")
    lines = [f"# {a.name}: {a.summary}", "", "## How it was made", "", "```bash", a.command, "```", "",
             f"Compute: {a.compute}.", "", "## Scores (calibrated: `lopt evaluate suite=<suite> "
             f"theta=pretrained:{a.name}`)", ""]
    for entry in a.suite:
        name, _, path = entry.partition("=")
        lines += suite_section(name, json.loads(Path(path).read_text()))
    if a.tutorial is not None:
        cmp = json.loads(a.tutorial.read_text())["comparison"]
        learned, adam = cmp["evaluated"], cmp["baseline"]
        lines += ["### The tutorial task (`digits_mlp`, 200 steps, 5 seeds)", "",
                  f"Mean training loss over the 200 steps {learned['mean_loss']:.4f} against the best tuned Adam's "
                  f"({cmp['baseline_label']}) {adam['mean_loss']:.4f}; final {learned['final_loss']:.4f} against "
                  f"{adam['final_loss']:.4f}.", ""]
    lines += [*a.note, *([""] if a.note else []), "## Check", "",
              f"`lopt evaluate theta=pretrained:{a.name} {' '.join(a.check)}`: mean final training "
              f"loss {loss:.6g} (tests/pretrained reproduce it within a relative {RTOL}).", ""]
    (dest / "card.md").write_text("\n".join(lines))
    print(f"Packaged {a.run} as theta=pretrained:{a.name} in {dest}.")
    return dest


if __name__ == "__main__":
    main()
