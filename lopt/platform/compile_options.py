"""XLA compiler options for programs that run once.

A program that runs once (making the initial state of every task, say) costs only its compile
time, and on XLA:CPU most of that is LLVM optimizing the generated code: the meta-training state of
the default run compiles in ~4 s at XLA's default backend optimization level and ~1 s at level 0,
then runs in milliseconds either way. Programs that run many times (the outer step) keep XLA's
defaults. Accelerators keep theirs too: their compile times differ and are not measured here.
"""
from typing import Any

import jax

CPU_ONE_SHOT = {"xla_backend_optimization_level": 0}


def one_shot() -> dict[str, Any]:
    """`compiler_options` for `jax.jit` of a program called once: fast to compile on CPU."""
    return dict(CPU_ONE_SHOT) if jax.default_backend() == "cpu" else {}


def jit_once(fn: Any) -> Any:
    """`jax.jit(fn)` compiled with the `one_shot` options."""
    return jax.jit(fn, compiler_options=one_shot())
