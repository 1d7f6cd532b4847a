"""Benchmark: `lopt baseline-sweep`'s vectorized sweep vs the same configurations one by one.

For each task (synthetic data with the task's exact shapes), trains every sweep configuration x
seed two ways, each compiled once:
  * vectorized: `lopt.training.sweep.sweep_curves`, all configurations and seeds in one compiled call (what
    `lopt baseline-sweep` runs);
  * one by one: a Python loop over configurations, each a call of one jitted function training
    the seeds of one configuration (`lopt.training.curves.training_curves`), its hyperparameters traced so
    it compiles once -- what a sweep looks like with a library that trains one run at a time.
Both train the same seeds on the same batches, so their curves agree to float32 rounding, except
where training at a large learning rate amplifies that rounding (vmapping changes XLA's order of
operations); "matching runs" counts the runs that agree to 1e-4 over their whole curve. Reports
compile time (first call minus steady state), best steady-state wall time of `--repeats` calls,
inner training steps/s and the speedup (one-by-one time / vectorized time). The last line printed is one JSON object.

    python scripts/bench_sweep.py [--tasks digits_mlp conv_cifar] [--optimizer nadamw] [--num-samples 16]
                                  [--num-seeds 5] [--num-steps 200] [--repeats 2]
"""
import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.table import Table

from lopt import commands, tasks
from lopt.training import curves, sweep


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(first call, best of `repeats` later calls) wall times; the first call compiles."""
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return times[0], min(times[1:])


def bench(task: str, optimizer: str, num_samples: int | None, num_seeds: int, num_steps: int, repeats: int) -> dict:
    """Time both paths over the sweep of `optimizer` on `task`, and count the (configuration, seed)
    runs whose `eval/train/loss` curves agree between them to 1e-4."""
    c = commands.build("baseline-sweep", [
        f"task={task}", "data.source=synthetic", "tracking.mode=disabled", f"optimizer={optimizer}",
        f"num_seeds={num_seeds}", f"num_steps={num_steps}",
        *([f"sweep.num_samples={num_samples}"] if num_samples else [])])
    s = c.settings
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in s.sweep.configurations(c.optimizer, s.seed).items()}
    count = len(hparams["lr"])
    per_config = [{k: v[i] for k, v in hparams.items()} for i in range(count)]
    dataset, key = tasks.load_data(c.task_config, c.shared.data, s.seed), jax.random.PRNGKey(s.seed)

    vectorized = jax.jit(sweep.sweep_curves, static_argnums=(0, 1, 5, 6))
    one = jax.jit(lambda hp, data, k: curves.training_curves(
        c.task, c.optimizer.build(s.num_steps, **hp), None, data, k, s))

    def run_vectorized() -> dict[str, jax.Array]:
        return vectorized(c.task, c.optimizer, hparams, dataset, key, s, s.sweep.batch_size)

    def run_one_by_one() -> list[dict[str, jax.Array]]:
        return [one(hp, dataset, key) for hp in per_config]

    vec_first, vec_s = _time(run_vectorized, repeats)
    loop_first, loop_s = _time(run_one_by_one, repeats)
    vec_loss = np.asarray(run_vectorized()["eval/train/loss"])
    loop_loss = np.stack([np.asarray(r["eval/train/loss"]) for r in run_one_by_one()])
    matching = np.isclose(vec_loss, loop_loss, rtol=1e-4, equal_nan=True).all(-1).sum()
    steps = count * s.num_seeds * s.num_steps
    return {
        "task": task, "optimizer": optimizer, "configurations": count, "seeds": s.num_seeds, "steps": s.num_steps,
        "vectorized_compile_s": round(vec_first - vec_s, 2), "one_by_one_compile_s": round(loop_first - loop_s, 2),
        "vectorized_s": round(vec_s, 3), "one_by_one_s": round(loop_s, 3),
        "vectorized_steps_per_s": round(steps / vec_s, 1), "one_by_one_steps_per_s": round(steps / loop_s, 1),
        "speedup": round(loop_s / vec_s, 2),
        "matching_runs": f"{matching}/{count * s.num_seeds}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits_mlp"], help="e.g. digits_mlp conv_cifar")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--num-samples", type=int, default=None, help="random search of N configurations")
    parser.add_argument("--num-seeds", type=int, default=5)
    parser.add_argument("--num-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = [bench(t, args.optimizer, args.num_samples, args.num_seeds, args.num_steps, args.repeats)
               for t in args.tasks]
    table = Table(title="baseline sweep: vectorized vs one configuration at a time")
    columns = {"task": "task", "optimizer": "optimizer", "configurations": "configs", "seeds": "seeds",
               "steps": "steps", "vectorized_compile_s": "vec compile s", "one_by_one_compile_s": "loop compile s",
               "vectorized_s": "vec s", "one_by_one_s": "loop s", "vectorized_steps_per_s": "vec steps/s",
               "one_by_one_steps_per_s": "loop steps/s", "speedup": "speedup", "matching_runs": "matching runs"}
    for name in columns.values():
        table.add_column(name, justify="right")
    for r in results:
        table.add_row(*(str(r[k]) for k in columns))
    Console(width=200).print(table)
    print(json.dumps({"processor": platform.processor() or platform.machine(), "device": jax.devices()[0].device_kind,
                      "cpus": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
