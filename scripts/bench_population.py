"""Benchmark: a population's outer iteration against `lopt meta-train` with one member.

For --task (synthetic data with the task's exact shapes) and --lopt, times after compilation:
  * one outer iteration of a single learned optimizer, the compiled call `lopt meta-train` runs
    (PES: both antithetic branches of --num-tasks problems over a truncation, the outer update);
  * one outer iteration of a --size population under self-training, every member at the same
    truncation length: one program, the members vmapped (`lopt.population.engine.LocalEngine`);
  * the same population with the members spread over --lengths (one vectorized unroll per
    length, each its own program), counted with each member's own truncation length;
  * the members advanced one program call per member (what running each member as its own
    meta-train process would do on this machine, without the vmapping).
Rates are member x inner steps per second (every task-step of every member, both branches).
The last line printed is one JSON object.

    python scripts/bench_population.py [--task digits_mlp] [--lopt small_fc_lopt] [--size 4]
                                       [--num-tasks 8] [--trunc 20] [--lengths 10 15 20 40] [--repeats 5]
"""
import argparse
import json
import platform
import time
from typing import Any

import jax

from lopt import commands
from lopt.commands import population
from lopt.population.engine import LocalEngine
from lopt.population.member import member


def _best_times(calls: dict[str, Any], repeats: int) -> dict[str, float]:
    """Each call's best wall time over `repeats` rounds after one warm-up (compile) call each; the
    rounds interleave the calls, so a slow spell of a shared machine does not favour one of them."""
    for fn in calls.values():
        jax.block_until_ready(fn())
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, fn in calls.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def components(task: str, lopt: str, num_tasks: int, trunc: int, size: int, lengths: list[int]) -> Any:
    overrides = ["data.source=synthetic", "tracking.mode=disabled", f"task={task}", f"lopt={lopt}",
                 f"num_tasks={num_tasks}", f"estimator.trunc_length={trunc}", "population=self_training",
                 f"population.size={size}", f"population.trunc_lengths=[{','.join(map(str, lengths))}]",
                 "eval.tasks=[digits_mlp]", "eval.baselines.run_missing=true"]
    return commands.build("meta-train", overrides)


def bench(task: str, lopt: str, num_tasks: int, trunc: int, size: int, lengths: list[int], repeats: int) -> dict:
    c = components(task, lopt, num_tasks, trunc, size, lengths)
    data = c.load_data()
    trainer, prog = c.trainer, population.program(c)

    single = jax.jit(trainer.step, donate_argnums=0)
    holder: dict[str, Any] = {"state": trainer.init(jax.random.PRNGKey(0))}

    def one_member():
        holder["state"], report = single(holder["state"], data)
        return report

    state = population.initial_state(prog, c.population, c.settings.seed)
    outer = tuple(int(o) for o in state.outer)
    engine = LocalEngine(prog, data, state.members, state.trainers)
    same = (trunc,) * size
    spread = tuple(lengths[i % len(lengths)] for i in range(size))
    step = jax.jit(prog.step, static_argnums=0, donate_argnums=1)
    members = [member(engine.members, i) for i in range(size)]

    def per_member():  # one call per member, each trained by its trainer's theta
        for i in range(size):
            members[i], _ = step(trunc, members[i], member(engine.trainers, i), data)
        return members

    per_iteration = prog.at(trunc, None).inner_steps_per_iteration  # one member at `trunc`
    steps = {"single": per_iteration, "population": size * per_iteration,
             "spread": sum(prog.at(n, None).inner_steps_per_iteration for n in spread),
             "per_member_calls": size * per_iteration}
    times = _best_times({"single": one_member, "population": lambda: engine.advance(outer, same, True),
                         "spread": lambda: engine.advance(outer, spread, True), "per_member_calls": per_member},
                        repeats)
    rates = {k: steps[k] / times[k] for k in steps}
    single_rate = rates["single"]
    return {"task": task, "lopt": lopt, "num_tasks": num_tasks, "size": size, "trunc_length": trunc,
            "lengths": list(spread),
            **{f"{k}_inner_steps_per_s": round(r, 1) for k, r in rates.items()},
            **{f"{k}_vs_single": round(r / single_rate, 3) for k, r in rates.items() if k != "single"}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="digits_mlp")
    parser.add_argument("--lopt", default="small_fc_lopt")
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--num-tasks", type=int, default=8)
    parser.add_argument("--trunc", type=int, default=20)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 15, 20, 40])
    parser.add_argument("--repeats", type=int, default=5)
    a = parser.parse_args(argv)
    result = bench(a.task, a.lopt, a.num_tasks, a.trunc, a.size, a.lengths, a.repeats)
    result.update({"device": jax.devices()[0].device_kind, "machine": platform.machine()})
    for key in ("single", "population", "spread", "per_member_calls"):
        rate = result[f"{key}_inner_steps_per_s"]
        ratio = "" if key == "single" else f"  ({result[f'{key}_vs_single']:.2f}x one member)"
        print(f"{key:>17}: {rate:>10,.0f} member x inner steps/s{ratio}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
