"""Benchmark: meta-training throughput vs plain Adam training of the same vectorized tasks, and the
per-step overhead of each learned optimizer.

For each task (synthetic data with the task's exact shapes) and each --lopt, times after compilation:
  * one outer iteration of --estimator (PES: both antithetic branches of `num_tasks` tasks over a
    truncation, plus the outer update) -- the compiled call `lopt meta-train` runs;
  * the same truncation trained by optax Adam, vmapped over the same `num_tasks` tasks (the
    hardware reference: what plain training of these tasks costs here).
Inner steps count every task-step, both antithetic branches included. With --conv-impls it also
times Adam training of conv_cifar inside `lax.scan` with each convolution implementation (the
XLA:CPU native-conv-in-loop trap, jax-ml/jax#12868).

--overhead instead prints, for every --lopt, its meta-parameter count and the time of one update of
--overhead-task's parameters (conv_cifar: 56,970) relative to optax Adam's: each optimizer runs
--steps updates (fixed random gradients) in one jitted lax.scan, the way training runs them, and
the per-update time is the best of --repeats rounds, the optimizers taking turns in each round so
that a loaded machine slows all of them alike. With it, the memory: the optimizer state's bytes
and the compiled program's (`Compiled.memory_analysis()`: arguments, outputs, temporaries).

--profile prints where one outer iteration's time goes (`profile`'s docstring). The last line
printed is one JSON object in every mode.

    python scripts/bench_meta_train.py [--tasks conv_cifar digits_mlp] [--lopt small_fc_lopt fc_lopt]
                                       [--estimator pes] [--num-tasks 8] [--repeats 3]
                                       [--conv-impls patches native]
    python scripts/bench_meta_train.py --overhead [--lopt ...] [--overhead-task conv_cifar]
    python scripts/bench_meta_train.py --profile [--tasks ...] [--lopt ...]
"""
import argparse
import json
import os
import platform
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lopt import commands, learned, tasks
from lopt.meta_trainer import MetaTrainer
from lopt.optimizers.hand_designed import Adam
from lopt.platform import memory
from lopt.unroll import TruncatedUnroll

LOPTS = sorted(learned.REGISTRY.names())


def _time(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def _components(task: str, num_tasks: int, trunc: int, *extra: str) -> tuple:
    c = commands.build("meta-train", ["data.source=synthetic", "tracking.mode=disabled", f"task={task}",
                                      f"num_tasks={num_tasks}", f"estimator.trunc_length={trunc}", *extra])
    return c.trainer, c.load_data()


def adam_steps_per_s(trainer: MetaTrainer, data, num_tasks: int, trunc: int, repeats: int) -> float:
    """Inner steps/s of optax Adam training `num_tasks` vmapped tasks (of the first task variant,
    on its dataset `data[0]`) for one truncation."""
    unroll = trainer.unrolls[0]
    assert isinstance(unroll, TruncatedUnroll)  # the unroll every meta-train run builds
    adam_unroll = TruncatedUnroll(unroll.task, Adam(1e-3).build(unroll.schedule.max_length), unroll.schedule)
    run = jax.jit(lambda s: adam_unroll.run(None, s, data[0], trunc, jnp.zeros((), jnp.int32),
                                            theta_batched=False), donate_argnums=0)
    holder = {"state": adam_unroll.init(None, jax.random.PRNGKey(1), num_tasks)}

    def truncation():
        holder["state"], out = run(holder["state"])
        return out

    return num_tasks * trunc / _time(truncation, repeats)


def bench_task(task: str, lopt: str, estimator: str, num_tasks: int, trunc: int, repeats: int) -> dict:
    trainer, data = _components(task, num_tasks, trunc, f"lopt={lopt}", f"estimator={estimator}")

    step = jax.jit(trainer.step, donate_argnums=0)
    holder = {"state": trainer.init(jax.random.PRNGKey(0))}

    def pes_iteration():
        holder["state"], report = step(holder["state"], data)
        return report

    t_compile = time.perf_counter()
    jax.block_until_ready(pes_iteration())
    compile_s = time.perf_counter() - t_compile
    pes_s = _time(pes_iteration, repeats)

    pes_rate = trainer.inner_steps_per_iteration / pes_s
    adam_rate = adam_steps_per_s(trainer, data, num_tasks, trunc, repeats)
    return {
        "task": task, "lopt": lopt, "estimator": estimator, "num_tasks": num_tasks, "trunc_length": trunc,
        "pes_iteration_s": round(pes_s, 4), "pes_compile_s": round(compile_s, 2),
        "pes_inner_steps_per_s": round(pes_rate, 2), "adam_inner_steps_per_s": round(adam_rate, 2),
        "ratio": round(pes_rate / adam_rate, 3),
    }


def _vmapped_truncation(step_fn, carry, trunc: int):
    """A no-argument callable running `trunc` steps of `step_fn(carry, i) -> carry` (vmapped over
    problems inside) in one jitted lax.scan, the carry donated, timed with the result ready."""
    run = jax.jit(lambda c: jax.lax.scan(lambda c, i: (step_fn(c, i), None), c, jnp.arange(trunc))[0],
                  donate_argnums=0)
    holder = {"carry": jax.tree_util.tree_map(jnp.copy, carry)}  # its own buffers: they are donated

    def call():
        holder["carry"] = run(holder["carry"])
        return jax.block_until_ready(holder["carry"])

    return call


def profile(task: str, lopt_name: str, estimator: str, num_tasks: int, trunc: int, repeats: int) -> dict:
    """Where the time of one outer iteration goes: the whole compiled iteration, and in the same run
    its parts compiled alone over the same 2 x num_tasks problems (both antithetic branches) and
    the same truncation: the task's gradients (batch sampling, loss, backprop; params moved by
    plain SGD), the learned optimizer's updates (fixed gradients), optax Adam's updates; the rest
    (perturbations, meta-loss, the estimator's accumulators, resets, the outer update) is the
    iteration minus gradients and updates. `host_s` is the time for the call to return (tracing
    cached, dispatch only); the device works while the host waits."""
    trainer, data = _components(task, num_tasks, trunc, f"lopt={lopt_name}", f"estimator={estimator}")
    unroll, lopt = trainer.unrolls[0], trainer.lopt
    batch = 2 * num_tasks
    step = jax.jit(trainer.step, donate_argnums=0)
    holder = {"state": trainer.init(jax.random.PRNGKey(0))}
    jax.block_until_ready(step(holder["state"], data))  # compile (the state was donated: re-make it)
    holder["state"] = trainer.init(jax.random.PRNGKey(0))
    host = float("inf")

    def iteration():
        nonlocal host
        t = time.perf_counter()
        holder["state"], report = step(holder["state"], data)
        host = min(host, time.perf_counter() - t)
        return jax.block_until_ready(report)

    keys = jax.random.split(jax.random.PRNGKey(1), batch)
    params = jax.vmap(unroll.task.init)(keys)

    def sgd_step(carry, i):
        def one(p, k):
            g = jax.grad(unroll.task.loss)(p, unroll.task.sample_batch(data[0], jax.random.fold_in(k, i)))
            return jax.tree_util.tree_map(lambda a, b: a - 1e-3 * b, p, g)
        return jax.vmap(one)(carry, keys)

    adam = Adam(1e-3).build(unroll.schedule.max_length)
    parts = {"iteration_s": iteration, "task_gradients_s": _vmapped_truncation(sgd_step, params, trunc),
             "lopt_updates_s": _scan_updates(_Vmapped(lopt), lopt.init_theta(jax.random.PRNGKey(0)), params, trunc)[0],
             "adam_updates_s": _scan_updates(_Vmapped(adam), None, params, trunc)[0]}
    for fn in parts.values():
        fn()
    best = {name: float("inf") for name in parts}
    for _ in range(repeats):
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    rest = best["iteration_s"] - best["task_gradients_s"] - best["lopt_updates_s"]
    out = {"task": task, "lopt": lopt_name, "estimator": estimator, "num_tasks": num_tasks, "trunc_length": trunc,
           **{k: round(v, 5) for k, v in best.items()}, "rest_s": round(rest, 5), "host_s": round(host, 5)}
    return out


class _Vmapped(NamedTuple):
    """An optimizer applied to a batch of problems (leading axis), one theta for all."""

    opt: Any

    def init(self, theta, params):
        return jax.vmap(lambda p: self.opt.init(theta, p))(params)

    def update(self, theta, state, params, grads, loss):
        return jax.vmap(lambda s, p, g: self.opt.update(theta, s, p, g, loss))(state, params, grads)


def _scan_updates(opt, theta, params, steps: int) -> tuple:
    """`steps` updates of `params` in one lax.scan, compiled: a no-argument callable running it,
    the compile seconds, the program's `memory.Footprint` and the optimizer state's bytes."""
    grads = jax.tree_util.tree_map(lambda p: 0.01 * jax.random.normal(jax.random.PRNGKey(1), p.shape), params)

    def run(state, params):
        def body(carry, i):
            state, params = carry
            params, state = opt.update(theta, state, params, grads, 1.0 + 0.01 * i.astype(jnp.float32))
            return (state, params), None
        return jax.lax.scan(body, (state, params), jnp.arange(steps))[0]

    state = opt.init(theta, params)
    t = time.perf_counter()
    compiled = jax.jit(run).lower(state, params).compile()
    compile_s = time.perf_counter() - t
    return (lambda: jax.block_until_ready(compiled(state, params)), compile_s, memory.footprint(compiled),
            memory.tree_bytes(state))


def overhead(lopts: list[str], task: str, steps: int, repeats: int) -> list[dict]:
    """Meta-parameter count, per-update time and memory of each learned optimizer vs optax Adam on
    `task`'s parameter shapes, all timed in the same rounds."""
    params = commands.build("evaluate", [f"task={task}"]).task.init(jax.random.PRNGKey(0))
    built, counts = {"adam": _scan_updates(Adam(1e-3).build(steps), None, params, steps)}, {"adam": 0}
    for name in lopts:
        lopt = commands.build("meta-train", [f"lopt={name}"]).lopt
        theta = lopt.init_theta(jax.random.PRNGKey(0))
        counts[name] = sum(x.size for x in jax.tree_util.tree_leaves(theta))
        built[name] = _scan_updates(lopt, theta, params, steps)
    best = {name: float("inf") for name in built}
    for _ in range(repeats):
        for name, (fn, *_) in built.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t) / steps)
    rows = []
    for name, (_, compile_s, fp, state_bytes) in built.items():
        rows.append({"lopt": name, "meta_params": counts[name], "update_us": round(best[name] * 1e6, 1),
                     "ratio": round(best[name] / best["adam"], 2), "compile_s": round(compile_s, 1),
                     "state_bytes": state_bytes, "program_bytes": None if fp is None else fp.total,
                     "temp_bytes": None if fp is None else fp.temps, "task": task,
                     "num_params": tasks.num_params(params)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=["conv_cifar", "digits_mlp"])
    parser.add_argument("--lopt", nargs="+", action="extend", choices=LOPTS,
                        help="learned optimizers (repeatable; default small_fc_lopt, or all with --overhead)")
    parser.add_argument("--estimator", default="pes", help="meta-gradient estimator (the estimator= config group)")
    parser.add_argument("--num-tasks", type=int, default=8)
    parser.add_argument("--trunc-length", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conv-impls", nargs="*", default=[], choices=["patches", "native"],
                        help="also time Adam on conv_cifar in a scan with these convolutions (trunc 4)")
    parser.add_argument("--overhead", action="store_true",
                        help="print each lopt's meta-parameter count and per-update time relative to optax Adam")
    parser.add_argument("--overhead-task", default="conv_cifar", help="task whose parameter shapes --overhead uses")
    parser.add_argument("--steps", type=int, default=20, help="updates per timed call in --overhead")
    parser.add_argument("--profile", action="store_true",
                        help="print where one outer iteration's time goes (gradients, updates, the rest, host)")
    args = parser.parse_args()
    meta = {"backend": jax.default_backend(), "device": str(jax.devices()[0]), "machine": platform.machine(),
            "cpus": os.cpu_count()}
    if args.overhead:
        results = overhead(args.lopt or LOPTS, args.overhead_task, args.steps, max(args.repeats, 10))
        print(f"{'optimizer':<16}{'meta-params':>12}{'us/update':>12}{'ratio':>8}{'compile s':>11}"
              f"{'state MB':>10}{'program MB':>12}{'temp MB':>9}")
        for r in results:
            mb = [f"{r[k] / 1e6:.2f}" if r[k] is not None else "-"
                  for k in ("state_bytes", "program_bytes", "temp_bytes")]
            print(f"{r['lopt']:<16}{r['meta_params']:>12}{r['update_us']:>12}{r['ratio']:>8}{r['compile_s']:>11}"
                  f"{mb[0]:>10}{mb[1]:>12}{mb[2]:>9}")
        print(json.dumps({**meta, "overhead": results}))
        return
    if args.profile:
        rows = [profile(task, lopt, args.estimator, args.num_tasks, args.trunc_length, max(args.repeats, 5))
                for task in args.tasks for lopt in args.lopt or ["small_fc_lopt"]]
        parts = ("iteration_s", "task_gradients_s", "lopt_updates_s", "rest_s", "host_s", "adam_updates_s")
        print(f"{'task':<12}{'lopt':<16}" + "".join(f"{p.removesuffix('_s'):>16}" for p in parts) + "   (ms)")
        for r in rows:
            print(f"{r['task']:<12}{r['lopt']:<16}" + "".join(f"{1e3 * r[p]:>16.2f}" for p in parts))
        print(json.dumps({**meta, "profile": rows}))
        return
    results = []
    for impl in args.conv_impls:
        trainer, data = _components("conv_cifar", args.num_tasks, 4, f"task.conv_impl={impl}")
        rate = adam_steps_per_s(trainer, data, args.num_tasks, 4, args.repeats)
        print(f"conv_cifar Adam in scan, conv_impl={impl}: {rate:.2f} inner steps/s", flush=True)
        results.append({"task": "conv_cifar", "conv_impl": impl, "adam_inner_steps_per_s": round(rate, 2)})
    for task in args.tasks:
        for lopt in args.lopt or ["small_fc_lopt"]:
            r = bench_task(task, lopt, args.estimator, args.num_tasks, args.trunc_length, args.repeats)
            print(f"{task} {lopt} {args.estimator}: {r['pes_inner_steps_per_s']} inner steps/s, Adam "
                  f"{r['adam_inner_steps_per_s']} inner steps/s, ratio {r['ratio']} (compile {r['pes_compile_s']} s)",
                  flush=True)
            results.append(r)
    print(json.dumps({**meta, "results": results}))


if __name__ == "__main__":
    main()
