"""`population.backend=ray`: a population run with one Ray actor per member ends as the same run on
the local backend (every member's state, the event log, every member's records), a local run's
checkpoint resumes on Ray, and the engine leaves a Ray instance it joined running, without its actors."""
import os
import shutil
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from rich.console import Console

from lopt.commands import meta_train
from lopt.population.settings import RaySettings
from tests.conftest import compose, records
from tests.population import final_state

ray = pytest.importorskip("ray")
from lopt.population.ray_backend import actor_options, connect, local_cpus, worker_env  # noqa: E402  (needs ray)

SIZE = 3


def run_args(store, backend):
    return ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_tasks=2",
            "schedule.length=50", "lopt=learnable_adam", "population=self_training", f"population.size={SIZE}",
            "population.trunc_lengths=[3,5]", "population.exploit_every=2", "population.sync_every=2",
            "eval.tasks=[wine_mlp]", "eval.num_steps=20", "eval.num_seeds=2", "eval.every=2",
            "eval.baselines.run_missing=true", f"eval.baselines.dir={store}", "outer_iterations=4", "log_every=1",
            "checkpoint_every=2", f"population.backend={backend}"]


def run(store, backend, run_dir):
    return meta_train.run(compose("meta_train", *run_args(store, backend)), run_dir, Console(width=200))



def assert_same_run(a, b, store):
    """Runs `a` and `b` ended in the same state, with the same events and member records. The state to
    float32 rounding: XLA may fuse a member's outer iteration alone (one actor) differently from the
    same iteration vmapped with other members (the local engine), which moves some leaves by an ulp."""
    layout = run_args(store, "local")
    for x, y in zip(jax.tree_util.tree_leaves(final_state(a, *layout)), jax.tree_util.tree_leaves(final_state(b, *layout)),
                    strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-8)
    assert (a / "events.jsonl").read_text() == (b / "events.jsonl").read_text()
    for i in range(SIZE):
        path = Path("members", str(i), "metrics.jsonl")
        assert records(a / path) == records(b / path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One local Ray instance (started as the engine starts one) for: a local run, the same run on
    Ray, and the local run's checkpoint at iteration 2 resumed on Ray (4 outer iterations of 3
    members: an exploit step at iteration 2; the trainers' thetas refreshed at iterations 1 and 3,
    kept at 2 and 4)."""
    base = tmp_path_factory.mktemp("ray_backend")
    store = base / "baselines"
    local = run(store, "local", base / "local")
    started = connect(RaySettings(), SIZE)
    try:
        on_ray = run(store, "ray", base / "ray")
        resumed = base / "resumed"
        shutil.copytree(base / "local", resumed)
        shutil.rmtree(resumed / "checkpoints" / "4")
        summary = run(store, "ray", resumed)
        yield store, base, local, on_ray, summary
    finally:
        if started:
            ray.shutdown()


def test_a_population_on_ray_ends_as_on_the_local_backend(runs):
    store, base, local, on_ray, _ = runs
    assert on_ray["backend"] == "ray" and on_ray["exploit_steps"] == local["exploit_steps"] == 1
    state = final_state(base / "local", *run_args(store, "local"))
    assert max(np.bincount(np.asarray(state.trunc_length))) >= 2  # a truncation length shared by members
    assert on_ray["best_member"] == local["best_member"]
    assert_same_run(base / "local", base / "ray", store)


def test_a_local_checkpoint_resumes_on_ray(runs):
    store, base, _, _, summary = runs
    assert summary["resumed_from_iteration"] == 2 and summary["backend"] == "ray"
    assert_same_run(base / "local", base / "resumed", store)


def test_the_engine_leaves_a_ray_instance_it_joined_running_without_its_actors(runs):
    assert ray.is_initialized()
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:  # killed actors' CPUs
        assert time.monotonic() < deadline, "the member actors still hold their CPUs"
        time.sleep(0.1)


def test_a_local_ray_instance_has_room_for_every_member_actor():
    assert local_cpus(4, 1.0, 2) == 4  # more members than cores: they share them rather than wait
    assert local_cpus(3, 1.5, 2) == 5
    assert local_cpus(2, 1.0, 16) == 16


def test_member_actors_run_with_the_drivers_xla_environment(runs, monkeypatch):
    def read_env():
        return os.environ.get("XLA_FLAGS"), os.environ.get("LOPT_RAY_TEST")

    task = ray.remote(read_env)
    assert "runtime_env" not in actor_options(1.0)  # the instance this process started inherited it
    assert ray.get(task.options(**actor_options(1.0)).remote()) == (os.environ["XLA_FLAGS"], None)
    monkeypatch.setenv("LOPT_RAY_TEST", "1")  # as for an instance started elsewhere: passed on explicitly
    assert ray.get(task.options(**actor_options(1.0)).remote()) == (os.environ["XLA_FLAGS"], "1")


def test_the_jax_and_xla_settings_the_actors_get():
    env = {"XLA_FLAGS": "--xla_foo", "JAX_PLATFORMS": "cpu", "LOPT_COMPILATION_CACHE": "/c", "HOME": "/root",
           "WANDB_API_KEY": "secret"}
    assert worker_env(env) == {"XLA_FLAGS": "--xla_foo", "JAX_PLATFORMS": "cpu", "LOPT_COMPILATION_CACHE": "/c"}
