"""Benchmark: PES meta-training throughput vs plain Adam training of the same vectorized tasks.

For each task (synthetic data with the task's exact shapes), times after compilation:
  * one PES outer iteration (both antithetic branches of `num_tasks` tasks over a truncation, plus
    the outer update) -- the compiled call `lopt meta-train` runs;
  * the same truncation trained by optax Adam, vmapped over the same `num_tasks` tasks (the
    hardware reference: what plain training of these tasks costs here).
Inner steps count every task-step, both PES branches included. With --conv-impls it also times
Adam training of conv_cifar inside `lax.scan` with each convolution implementation (the XLA:CPU
native-conv-in-loop trap, jax-ml/jax#12868). The last line printed is one JSON object with a
record per task.

    python scripts/bench_meta_train.py [--tasks conv_cifar digits_mlp] [--num-tasks 8] [--repeats 3]
                                       [--conv-impls patches native]
"""
import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
from hydra import compose, initialize_config_module

from lopt import meta_train
from lopt.optimizers.hand_designed import Adam
from lopt.unroll import TruncatedUnroll


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
    with initialize_config_module(config_module="lopt_conf", version_base="1.3"):
        cfg = compose("meta_train", overrides=[
            f"task={task}", "data.source=synthetic", f"num_tasks={num_tasks}",
            f"estimator.trunc_length={trunc}", "tracking.mode=disabled", *extra])
    c = meta_train.build(cfg)
    return c.trainer, meta_train.load_data(c)


def adam_steps_per_s(trainer: meta_train.MetaTrainer, data, num_tasks: int, trunc: int, repeats: int) -> float:
    """Inner steps/s of optax Adam training `num_tasks` vmapped tasks for one truncation."""
    adam_unroll = TruncatedUnroll(trainer.unroll.task, Adam(1e-3).build(trainer.unroll.schedule.max_length), trainer.unroll.schedule)
    run = jax.jit(lambda s: adam_unroll.run(None, s, data, trunc, jnp.zeros((), jnp.int32),
                                            theta_batched=False), donate_argnums=0)
    holder = {"state": adam_unroll.init(None, jax.random.PRNGKey(1), num_tasks)}

    def truncation():
        holder["state"], out = run(holder["state"])
        return out

    return num_tasks * trunc / _time(truncation, repeats)


def bench_task(task: str, num_tasks: int, trunc: int, repeats: int) -> dict:
    trainer, data = _components(task, num_tasks, trunc)

    step = jax.jit(trainer.step, donate_argnums=0)
    holder = {"state": trainer.init(jax.random.PRNGKey(0))}

    def pes_iteration():
        holder["state"], metrics = step(holder["state"], data)
        return metrics

    t_compile = time.perf_counter()
    jax.block_until_ready(pes_iteration())
    compile_s = time.perf_counter() - t_compile
    pes_s = _time(pes_iteration, repeats)

    pes_rate = trainer.inner_steps_per_iteration / pes_s
    adam_rate = adam_steps_per_s(trainer, data, num_tasks, trunc, repeats)
    return {
        "task": task, "num_tasks": num_tasks, "trunc_length": trunc,
        "pes_iteration_s": round(pes_s, 4), "pes_compile_s": round(compile_s, 2),
        "pes_inner_steps_per_s": round(pes_rate, 2), "adam_inner_steps_per_s": round(adam_rate, 2),
        "ratio": round(pes_rate / adam_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=["conv_cifar", "digits_mlp"])
    parser.add_argument("--num-tasks", type=int, default=8)
    parser.add_argument("--trunc-length", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conv-impls", nargs="*", default=[], choices=["patches", "native"],
                        help="also time Adam on conv_cifar in a scan with these convolutions (trunc 4)")
    args = parser.parse_args()
    results = []
    for impl in args.conv_impls:
        trainer, data = _components("conv_cifar", args.num_tasks, 4, f"task.conv_impl={impl}")
        rate = adam_steps_per_s(trainer, data, args.num_tasks, 4, args.repeats)
        print(f"conv_cifar Adam in scan, conv_impl={impl}: {rate:.2f} inner steps/s", flush=True)
        results.append({"task": "conv_cifar", "conv_impl": impl, "adam_inner_steps_per_s": round(rate, 2)})
    for task in args.tasks:
        r = bench_task(task, args.num_tasks, args.trunc_length, args.repeats)
        print(f"{task}: PES {r['pes_inner_steps_per_s']} inner steps/s, Adam {r['adam_inner_steps_per_s']}"
              f" inner steps/s, ratio {r['ratio']} (compile {r['pes_compile_s']} s)", flush=True)
        results.append(r)
    print(json.dumps({"backend": jax.default_backend(), "device": str(jax.devices()[0]),
                      "machine": platform.machine(), "cpus": os.cpu_count(),
                      "results": results}))


if __name__ == "__main__":
    main()
