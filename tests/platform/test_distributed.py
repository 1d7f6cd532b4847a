"""Multi-device and multi-host runs equal single-device ones.

The device count is fixed when JAX starts, so the multi-device checks run in child processes
started with --xla_force_host_platform_device_count=N added to XLA_FLAGS (`_child` below): one with
4 CPU devices comparing a 4-device mesh with one device, and two processes of 2 devices each joined by
`jax.distributed.initialize` on localhost. Children print one JSON line of measurements.
"""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt.config import from_config
from lopt.errors import ConfigError
from lopt.platform import distributed

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5  # max |4-device - 1-device|, relative to the values' scale (measured: < 1e-7; see docs/clusters.md)
META_TRAIN = ["task=quadratic", "num_tasks=4", "estimator.trunc_length=3", "schedule.length=7",
              "tracking.mode=disabled"]


def _rel_diff(a, b) -> float:
    a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / (np.max(np.abs(np.asarray(y))) + 1e-12))
               for x, y in zip(a, b))


def _meta_train(mesh, steps: int):
    """Theta after `steps` outer iterations on `mesh` (None: one device, plain jit), the state's
    estimator-state sharding and the step's compile count."""
    from lopt.commands import meta_train
    from tests.conftest import compose_meta_train

    c = meta_train.build(compose_meta_train(*META_TRAIN))
    state = c.trainer.init(jax.random.PRNGKey(0))
    data = (None,)  # the quadratic task has no dataset
    if mesh is None:
        step = jax.jit(c.trainer.step)
    else:
        state, data, step = distributed.jit_step(c.trainer.step, state, data, mesh, c.trainer.task_axes(state))
    for _ in range(steps):
        state, _ = step(state, data)
    return state, step._cache_size()


def _curves(mesh):
    """Evaluate (3 seeds: padded to 4) and sweep (5 configurations in chunks of 4: padded to 8)
    curves on the quadratic task; the evaluation's flops per device, and the most configurations
    whose parameters ([configurations, 3 seeds, 16]) one device holds in the compiled sweep."""
    from lopt.optimizers import hand_designed
    from lopt.tasks import build, parse
    from lopt.training import curves, sweep

    task = build(parse({"name": "quadratic", "kind": "quadratic"}))
    s = curves.CurveSettings(num_seeds=3, num_steps=6, eval_every=3, eval_batches=2, last_eval_batches=2)
    key = jax.random.PRNGKey(0)
    ev = jax.jit(curves.training_curves, static_argnums=(0, 1, 5, 6)).lower(
        task, hand_designed.SGD(0.1).build(s.num_steps), None, None, key, s, mesh).compile()
    lrs = {"lr": jnp.asarray([0.01, 0.03, 0.1, 0.3, 1.0])}
    sw = jax.jit(sweep.sweep_curves, static_argnums=(0, 1, 5, 6, 7)).lower(
        task, hand_designed.SGD(), lrs, None, key, s, 4, mesh).compile()
    per_device = max(int(n) for n in re.findall(r"f32\[(\d+),3,16\]", sw.as_text()))
    # a compiled program takes only the non-static arguments
    return ev(None, None, key), sw(lrs, None, key), (ev.cost_analysis()["flops"], per_device)


def _child_multidevice() -> dict:
    mesh = distributed.make_mesh()
    state4, compiles = _meta_train(mesh, 3)
    state1, _ = _meta_train(distributed.make_mesh(1), 3)
    est = jax.tree_util.tree_leaves(state4.estimator_state)
    ev4, sw4, (flops4, configs4) = _curves(mesh)
    ev1, sw1, (flops1, configs1) = _curves(None)
    return {
        "devices": mesh.size, "compiles": compiles,
        "estimator_devices": min(len(x.sharding.device_set) for x in est),
        "estimator_shard_rows": max(s.data.shape[0] for x in est for s in x.addressable_shards),
        "estimator_rows": min(x.shape[0] for x in est),
        "theta_replicated": all(x.sharding.is_fully_replicated for x in jax.tree_util.tree_leaves(state4.theta)),
        "theta_diff": _rel_diff(state4.theta, state1.theta),
        "evaluate_diff": _rel_diff(ev4, ev1), "sweep_diff": _rel_diff(sw4, sw1),
        "shapes": [list(ev4["train/loss"].shape), list(sw4["train/loss"].shape)],
        "evaluate_flops_ratio": flops4 / flops1, "sweep_configurations_per_device": [configs4, configs1],
    }


def _child_multihost(port: int, process_id: int) -> dict:
    mesh = distributed.setup(distributed.parse({"coordinator_address": f"localhost:{port}", "num_processes": 2,
                                                "process_id": process_id}))
    state, compiles = _meta_train(mesh, 2)
    reference, _ = _meta_train(None, 2)  # this process alone, on its first device
    ev, _, _ = _curves(mesh)
    ev1, _, _ = _curves(None)
    return {"processes": jax.process_count(), "devices": mesh.size, "main": distributed.is_main_process(),
            "compiles": compiles, "theta_diff": _rel_diff(state.theta, reference.theta),
            "evaluate_diff": _rel_diff(ev, ev1)}


def _spawn(devices: int, call: str) -> subprocess.Popen:
    # the test process's XLA flags kept: conftest.py's compile-time flags more than halve the children's time
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = {**os.environ, "XLA_FLAGS": flags, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = f"import json, tests.platform.test_distributed as t; print('RESULT', json.dumps(t.{call}))"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[len("RESULT"):])


def test_four_devices_match_one_device():
    r = _result(_spawn(4, "_child_multidevice()"))
    assert r["devices"] == 4 and r["compiles"] == 1
    # PES state: [2 * 4 tasks] inner problems and [4] accumulators, split 4 ways; theta replicated
    assert r["estimator_devices"] == 4 and r["estimator_shard_rows"] * 4 == r["estimator_rows"] * 2
    assert r["theta_replicated"]
    assert r["theta_diff"] < TOL and r["evaluate_diff"] < TOL and r["sweep_diff"] < TOL, r
    assert r["shapes"] == [[3, 6], [5, 3, 6]]  # padding dropped
    # each device computes its share: 1 of 4 padded seeds (vs 3 on one device), 1 of each chunk of 4 configurations
    assert r["evaluate_flops_ratio"] == pytest.approx(1 / 3, rel=0.2)
    assert r["sweep_configurations_per_device"] == [1, 4]


@pytest.mark.slow  # ~1.5 min of CPU: two JAX runtimes; the 4-device test covers the same sharded code
def test_two_processes_join_and_match_one_process():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    procs = [_spawn(2, f"_child_multihost({port}, {i})") for i in range(2)]
    results = [_result(p) for p in procs]
    assert [r["main"] for r in results] == [True, False]
    for r in results:
        assert r["processes"] == 2 and r["devices"] == 4 and r["compiles"] == 1
        assert r["theta_diff"] < TOL and r["evaluate_diff"] < TOL, r


@pytest.mark.parametrize("settings, env, expected", [
    ({}, {}, False),
    ({}, {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, False),  # one task (e.g. a sweep job)
    ({}, {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, False),  # salloc shell, not launched by srun
    ({}, {"SLURM_JOB_ID": "7", "SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, True),
    ({}, {"OMPI_COMM_WORLD_SIZE": "2"}, True),
    ({}, {"JAX_COORDINATOR_ADDRESS": "node0:1234"}, True),
    ({"coordinator_address": "node0:1234"}, {}, True),
    ({"multi_process": False}, {"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, False),
    ({"multi_process": True}, {}, True),
])
def test_should_initialize_detects_multi_process_launches(settings, env, expected):
    assert distributed.should_initialize(from_config(distributed.Settings, settings, "distributed"), env) is expected


@pytest.mark.parametrize("node, bad", [({"devices": 0}, "devices=0"), ({"devices": "all"}, "devices='all'"),
                                       ({"multi_process": "yes"}, "multi_process='yes'"),
                                       ({"num_processes": 2, "process_id": 2}, "process_id=2")])
def test_bad_settings_name_the_value(node, bad):
    with pytest.raises(ConfigError, match=f"distributed.{bad}"):
        from_config(distributed.Settings, node, "distributed")


def test_setup_rejects_more_devices_than_present_and_uneven_task_counts():
    with pytest.raises(ConfigError, match="distributed.devices=2 is more than the 1 local devices"):
        distributed.setup(distributed.parse({"devices": 2}))
    mesh = distributed.setup(distributed.parse({"devices": "auto"}))
    distributed.check_divisible(3, mesh, "num_tasks")  # one device: anything splits
    with pytest.raises(ConfigError, match="num_tasks=3 does not split over the 2 devices"):
        distributed.check_divisible(3, jax.sharding.Mesh(np.array(jax.devices() * 2), ("tasks",)), "num_tasks")


@pytest.mark.parametrize("batch_size", [None, 2, 4, 16])
def test_map_sharded_is_vmap(batch_size):
    xs = {"a": jnp.arange(5.0), "b": jnp.arange(10.0).reshape(5, 2)}
    fn = lambda x: x["a"] * x["b"].sum() + 1.0  # noqa: E731
    out = jax.jit(lambda xs: distributed.map_sharded(fn, xs, distributed.make_mesh(), batch_size))(xs)
    np.testing.assert_array_equal(out, jax.vmap(fn)(xs))


def test_put_gives_shared_leaves_their_own_buffers():
    zero = jnp.zeros((), jnp.int32)
    placed = distributed.put((zero, zero), distributed.replicated(distributed.make_mesh()))
    ptrs = {x.addressable_shards[0].data.unsafe_buffer_pointer() for x in placed}
    assert len(ptrs) == 2 and int(placed[0]) == int(placed[1]) == 0
    jax.jit(lambda t: (t[0] + 1, t[1] + 2), donate_argnums=0)(placed)  # both donated: no error
