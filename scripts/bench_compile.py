"""Benchmark: how long a user waits for meta-training to start, and where the wait goes.

Each configuration runs in a fresh Python process with the persistent compilation cache off (every
compile is cold), along the path `lopt meta-train` takes: build the components from the config,
load the data, trace, lower and XLA-compile the outer step, allocate the state, run the first
outer iteration, then time further iterations (steady state). Per configuration it prints one JSON
line with those phases in seconds (`compile_cpu_s`: the CPU seconds of XLA's compile, all threads,
less sensitive than wall time to other load on the machine), `first_iteration_s` (from the start of the process, imports
included, to the end of the first outer iteration: the wait a user sees), the number of HLO
instructions of the lowered outer step (`hlo_ops`, before XLA's optimizations) and the compiled
program's memory (`Compiled.memory_analysis()`); then a table.

Configurations: `default` (the default `lopt meta-train`), `conv_cifar` (`task=conv_cifar`,
synthetic data) and `grid` (every learned optimizer x estimator on the offline default task with
`num_tasks=2 schedule.length=20`, docs/configuration.md's 30-job grid), or `NAME:override,override` for any
other. `--cli-grid` also times docs/configuration.md's 30-job grid through the real `lopt meta-train
--multirun` (cache off), start to finish.

    python scripts/bench_compile.py [default conv_cifar grid] [--steps 5] [--cli-grid]
"""
import argparse
import json
import os
import subprocess
import sys
import time

START = time.perf_counter()

LOPTS = ("small_fc_lopt", "fc_lopt", "nn_adam", "learnable_adam", "rnn_mlp_lopt", "hypernet")
ESTIMATORS = ("pes", "es", "full_es", "tbptt", "merged")
GRID = ("num_tasks=2", "schedule.length=20")
NAMED = {"default": (), "conv_cifar": ("task=conv_cifar", "data.source=synthetic")}


def configurations(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Configuration name -> meta-train overrides."""
    out: dict[str, tuple[str, ...]] = {}
    for name in names:
        if name == "grid":
            out.update({f"{lo}+{est}": (f"lopt={lo}", f"estimator={est}", *GRID) for lo in LOPTS for est in ESTIMATORS})
        elif ":" in name:
            label, overrides = name.split(":", 1)
            out[label] = tuple(overrides.split(","))
        elif name in NAMED:
            out[name] = NAMED[name]
        else:
            sys.exit(f"bench_compile: unknown configuration {name!r}: use default, conv_cifar, grid or NAME:overrides")
    return out


def hlo_ops(lowered) -> int:
    """Instructions of a lowered program in XLA's HLO, over all its computations."""
    text = lowered.as_text(dialect="hlo")
    return sum(1 for line in text.splitlines() if " = " in line and not line.lstrip().startswith(("HloModule", "//")))


def measure(overrides: tuple[str, ...], steps: int) -> dict:
    """The phases of one configuration, in this process (see the module docstring); cold only
    in a process whose compilation cache is off and that compiled nothing like it before."""
    import jax

    from lopt import commands
    from lopt.platform import distributed, memory

    imported = time.perf_counter()
    t = {"import_s": imported - START}
    c = commands.build("meta-train", ["tracking.mode=disabled", *overrides])
    trainer, mesh = c.trainer, distributed.make_mesh()
    data = distributed.put(c.load_data(), distributed.replicated(mesh))
    key = jax.random.PRNGKey(c.settings.seed)
    now = time.perf_counter()
    t["build_s"], last = now - imported, now

    def phase(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        t[name], last = now - last, now

    shapes = jax.eval_shape(trainer.init, key)
    axes = trainer.task_axes(shapes)
    traced = distributed.trace_step(trainer.step, shapes, data, mesh, axes)
    phase("trace_s")
    lowered = traced.lower()
    phase("lower_s")
    cpu = time.process_time()
    compiled = lowered.compile()
    t["compile_cpu_s"] = time.process_time() - cpu  # CPU work of all threads: less sensitive to other load
    phase("compile_s")
    state = distributed.put(trainer.init(key), distributed.task_shardings(axes, mesh))
    jax.block_until_ready(state)
    phase("init_s")
    state, report = compiled(state, data)
    jax.block_until_ready(state)
    phase("first_step_s")
    t["first_iteration_s"] = last - START
    best = float("inf")
    for _ in range(steps):
        begin = time.perf_counter()
        state, report = compiled(state, data)
        jax.block_until_ready(state)
        best = min(best, time.perf_counter() - begin)
    fp = memory.footprint(compiled)
    return {**{k: round(v, 3) for k, v in t.items()}, "step_s": round(best, 5),
            "inner_steps_per_s": round(trainer.inner_steps_per_iteration / best, 1), "hlo_ops": hlo_ops(lowered),
            "memory_bytes": None if fp is None else fp.total, "temp_bytes": None if fp is None else fp.temps,
            "backend": jax.default_backend()}


def run_child(name: str, overrides: tuple[str, ...], steps: int) -> dict:
    """`measure` in a fresh process (nothing compiled or traced before), as one JSON line."""
    env = {**os.environ, "LOPT_COMPILATION_CACHE": ""}
    done = subprocess.run([sys.executable, __file__, "--child", ",".join(overrides), "--steps", str(steps)],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        return {"config": name, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return {"config": name, **json.loads(done.stdout.strip().splitlines()[-1])}


def cli_grid() -> dict:
    """Wall time of docs/configuration.md's 30-job grid through `lopt meta-train --multirun`, cache off."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "LOPT_COMPILATION_CACHE": "", "WANDB_MODE": "disabled"}
        begin = time.perf_counter()
        done = subprocess.run(
            ["lopt", "meta-train", "--multirun", f"lopt={','.join(LOPTS)}", f"estimator={','.join(ESTIMATORS)}",
             *GRID, "outer_iterations=3", "tracking.mode=disabled", f"hydra.sweep.dir={out}/sweep"],
            capture_output=True, text=True, env=env, cwd=out)
        return {"config": "cli_grid_30_jobs", "wall_s": round(time.perf_counter() - begin, 1),
                "returncode": done.returncode}


COLUMNS = ("first_iteration_s", "import_s", "build_s", "trace_s", "lower_s", "compile_s", "compile_cpu_s", "init_s",
           "first_step_s", "step_s", "hlo_ops", "memory_bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=["default", "conv_cifar", "grid"])
    parser.add_argument("--steps", type=int, default=5, help="timed outer iterations after the first (best is kept)")
    parser.add_argument("--cli-grid", action="store_true", help="also time the 30-job grid through the CLI")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        import jax

        jax.config.update("jax_enable_compilation_cache", False)  # every compile cold
        print(json.dumps(measure(tuple(o for o in args.child.split(",") if o), args.steps)))
        return
    rows = []
    for name, overrides in configurations(args.configs).items():
        rows.append(run_child(name, overrides, args.steps))
        print(json.dumps(rows[-1]), flush=True)
    if args.cli_grid:
        rows.append(cli_grid())
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'config':<28}" + "".join(f"{c.removesuffix('_s'):>14}" for c in COLUMNS))
    for r in rows:
        print(f"{r['config']:<28}" + "".join(f"{r.get(c, '-')!s:>14}" for c in COLUMNS))


if __name__ == "__main__":
    main()
