"""Fault injection: runs of `lopt meta-train`, each hit at a random point by a random fault, then
resumed with the same command; a fault is survived when the resumed run's final theta is bitwise
the uninterrupted run's. The faults a run meets on a shared cluster:

  sigkill   the scheduler kills the job (SIGKILL): no chance to clean up;
  sigterm   the scheduler's warning before a preemption: the run checkpoints and exits 143;
  corrupt   SIGKILL, then the latest checkpoint damaged (a flipped byte or a truncated file): the
            resume sets it aside and continues from the one before;
  second    the same command launched again into the live run's directory (a requeued job beside
            the running one): refused with status 2, then the first is killed (SIGKILL).

    python scripts/chaos.py --quick                       # 8 runs of a small offline meta-train
    python scripts/chaos.py --runs 20 --seed 3            # the default meta-train (lopt meta-train)
    python scripts/chaos.py --quick --faults sigterm,corrupt

Each fault strikes once first, then they are drawn at random. Prints one line per run and
`survived K of N faults`; the verdict holds only when K == N. Writes chaos.json. Each `lopt` runs in
its own process, as a scheduler would start it.
"""
import argparse
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lopt.commands import build
from lopt.io.checkpoint import Checkpointer, load_tree
from lopt_cli.reproduction import Verdict, finish

SCRIPT = "chaos"
FAULTS = ("sigkill", "sigterm", "corrupt", "second")
QUICK = ["data.source=synthetic", "data.synthetic_examples=64", "num_tasks=2", "estimator.trunc_length=3",
         "schedule.length=12", "task.hidden=[8]", "lopt=learnable_adam", "outer_iterations=300", "log_every=1",
         "checkpoint_every=20"]
LOPT = [sys.executable, "-m", "lopt_cli.main", "meta-train"]


def _records(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def _start(args: list[str], run: Path) -> subprocess.Popen:
    return subprocess.Popen([*LOPT, *args, f"hydra.run.dir={run}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _damage(run: Path, rng: random.Random) -> str:
    """Flip a byte of, or truncate, the largest data file of the run's latest checkpoint."""
    ckpt = Checkpointer(run / "checkpoints")
    latest = ckpt.latest_step()
    ckpt.close()
    if latest is None:
        return "no checkpoint yet to damage"
    data = max((run / "checkpoints" / str(latest)).rglob("ocdbt.process_0/d/*"), key=lambda p: p.stat().st_size)
    raw = bytearray(data.read_bytes())
    if rng.random() < 0.5:
        raw[rng.randrange(len(raw))] ^= 0xFF
        how = "flipped a byte of"
    else:
        raw = raw[: len(raw) // 2]
        how = "truncated"
    data.write_bytes(bytes(raw))
    return f"{how} checkpoint {latest}"


def inject(fault: str, args: list[str], run: Path, at: int, rng: random.Random) -> str:
    """Start the run, hit it with `fault` once it has logged `at` records; what happened, in words.
    Raises AssertionError when lopt did not behave as promised."""
    proc = _start(args, run)
    while _records(run) < at:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (status {proc.returncode}) before the fault: {proc.communicate()[1]}")
        time.sleep(0.02)
    if fault == "sigterm":
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate()
        assert proc.returncode == 128 + signal.SIGTERM, f"SIGTERM: exit status {proc.returncode}: {err}"
        return " ".join(line for line in out.splitlines() if line.startswith("Preempted"))
    if fault == "second":
        proc.send_signal(signal.SIGSTOP)  # frozen (its lock held) while the second starts: it cannot finish first
        second = subprocess.run([*LOPT, *args, f"hydra.run.dir={run}"], capture_output=True, text=True)
        assert second.returncode == 2 and "Another lopt process is writing into" in second.stderr, \
            f"a second launch into the live directory: exit status {second.returncode}: {second.stderr}"
        what = f"a second launch refused ({second.stderr.split('(')[1].split(')')[0]}), then SIGKILL"
    else:
        what = "SIGKILL"
    proc.kill()
    proc.communicate()
    if fault == "corrupt":
        what += ", then " + _damage(run, rng)
    return what


def final_theta(args: list[str], run: Path) -> list[np.ndarray]:
    lopt = build("meta-train", args).trainer.lopt
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(load_tree(run / "final_theta",
                                                                        lopt.init_theta(jax.random.PRNGKey(0))))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"a small offline run ({' '.join(QUICK)})")
    p.add_argument("--runs", type=int, default=8, help="faulted runs (default 8)")
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, drawn at random (default: {FAULTS})")
    p.add_argument("--seed", type=int, default=0, help="draws the faults and when they strike")
    p.add_argument("--out", type=Path, default=None, help="directory for the runs and chaos.json")
    p.add_argument("overrides", nargs="*", help="extra overrides of every meta-train (e.g. tracking.mode=disabled)")
    a = p.parse_args(argv)
    faults = a.faults.split(",")
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        p.error(f"--faults {','.join(unknown)}: valid faults are {', '.join(FAULTS)}")
    args = [*(QUICK if a.quick else []), *a.overrides]
    cfg = build("meta-train", args).settings
    out = a.out or Path("outputs/chaos") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    reference = subprocess.run([*LOPT, *args, f"hydra.run.dir={out / 'uninterrupted'}"], capture_output=True,
                               text=True)
    if reference.returncode != 0:
        sys.exit(f"{SCRIPT}: the uninterrupted run failed: {reference.stderr}")
    expected = final_theta(args, out / "uninterrupted")
    rows = []
    for i in range(a.runs):
        fault = faults[i] if i < len(faults) else rng.choice(faults)  # each fault once, then at random
        logged = cfg.outer_iterations // cfg.log_every
        # a damaged checkpoint needs one before it to resume from (when none verifies, lopt refuses)
        first = 2 * max(1, cfg.checkpoint_every // cfg.log_every) + 1 if fault == "corrupt" else 1
        at = rng.randint(first, max(first, int(0.9 * logged)))
        run = out / f"run_{i}"
        shutil.rmtree(run, ignore_errors=True)
        row: dict[str, Any] = {"run": i, "fault": fault, "after_records": at}
        try:
            row["what"] = inject(fault, args, run, at, rng)
            resumed = subprocess.run([*LOPT, *args, f"hydra.run.dir={run}"], capture_output=True, text=True)
            assert resumed.returncode == 0, f"the resume failed: {resumed.stderr}"
            row["survived"] = all(np.array_equal(x, y) for x, y in zip(expected, final_theta(args, run), strict=True))
            row["why"] = "final theta bitwise equal" if row["survived"] else "final theta differs"
        except AssertionError as err:
            row["survived"], row["why"] = False, str(err)
        print(f"run {i}: {fault} after {at} records ({row.get('what', '-')}): "
              f"{'survived' if row['survived'] else 'NOT survived'} ({row['why']})", flush=True)
        rows.append(row)
    survived = sum(r["survived"] for r in rows)
    print(f"\nsurvived {survived} of {len(rows)} faults")
    verdict = Verdict("faults", "every faulted run resumes to the uninterrupted run's final theta, bitwise",
                      f"survived {survived} of {len(rows)} faults", survived == len(rows))
    result = {"runs": rows, "survived": survived, "overrides": args, "seed": a.seed}
    return finish(out / "chaos.json", result, [verdict])


if __name__ == "__main__":
    main()
