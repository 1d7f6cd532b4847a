"""`lopt export <theta> <dir>`: a trained optimizer as a self-contained folder (theta, config, model
card, checksums; `lopt.io.exported`) that `lopt.learned.export.optimizer(<dir>)` and every command
(`theta=<dir>`) load offline. Its arguments are plain (no Hydra config): what to export and where."""
import argparse
from pathlib import Path

from lopt.io import exported


def main(argv: list[str]) -> int:
    """Parse `argv` and export; bad input raises a `UserError` (argparse's own errors exit 2)."""
    p = argparse.ArgumentParser(prog="lopt export", description=__doc__)
    p.add_argument("theta", help="a meta-train run directory, its final_theta/ or best_theta/, or pretrained:<name>")
    p.add_argument("out", type=Path, help="the folder to create (new, or an empty directory)")
    p.add_argument("--scores", action="append", default=[], type=Path, metavar="EVALUATE_RUN",
                   help="the run directory (or suite.json) of `lopt evaluate suite=<suite> theta=<theta>`, "
                        "repeatable: its calibrated scores, with their intervals, go on the card")
    a = p.parse_args(argv)
    out = exported.write(a.theta, a.out, a.scores)
    print(f"Exported {a.theta} to {out}: {', '.join(sorted(f.name for f in out.iterdir()))}.\n"
          f'Load it with: from lopt.learned.export import optimizer; tx = optimizer("{out}", num_steps=...)')
    return 0
