"""scripts/bench_compile.py: its configuration menu, HLO counting and the phases it measures."""
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from tests.conftest import CHEAP

_SPEC = importlib.util.spec_from_file_location(
    "bench_compile", Path(__file__).resolve().parents[2] / "scripts" / "bench_compile.py")
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_the_grid_is_every_lopt_with_every_estimator_at_the_readme_sizes():
    configs = bench.configurations(["default", "grid", "mine:task=quadratic,num_tasks=4"])
    assert len(configs) == 2 + 6 * 5
    assert configs["default"] == () and configs["mine"] == ("task=quadratic", "num_tasks=4")
    assert configs["hypernet+tbptt"] == ("lopt=hypernet", "estimator=tbptt", "num_tasks=2", "schedule.length=20")
    with pytest.raises(SystemExit, match="unknown configuration 'nope'"):
        bench.configurations(["nope"])


def test_hlo_ops_counts_each_instruction_once():
    x = jnp.ones(3)

    def count(fn):
        return bench.hlo_ops(jax.jit(fn).lower(x))

    assert count(lambda v: jnp.sin(jnp.sin(jnp.sin(v)))) - count(jnp.sin) == 2


def test_a_measurement_has_every_phase_and_they_add_up():
    r = bench.measure(tuple(CHEAP), steps=2)
    phases = ("import_s", "build_s", "trace_s", "lower_s", "compile_s", "init_s", "first_step_s")
    assert all(r[p] >= 0 for p in phases) and r["hlo_ops"] > 100 and r["memory_bytes"] > 0
    assert r["first_iteration_s"] >= sum(r[p] for p in phases) - 0.01
    assert 0 < r["step_s"] and r["inner_steps_per_s"] > 0
