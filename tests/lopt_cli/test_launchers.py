"""Launcher presets (hydra/launcher=joblib|submitit_slurm|submitit_local|ray), each joblib job's share
of the machine, one W&B group per multirun and run directories that never collide."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from lopt.errors import ConfigError
from lopt_cli.launchers import check_plugin, core_share, parallel_jobs
from tests import cli_process

TINY_EVAL = ["data.source=synthetic", "data.synthetic_examples=64", "task.hidden=[8]", "num_seeds=2", "num_steps=4",
             "eval_every=2", "eval_batches=2", "last_eval_batches=2", "tracking.mode=disabled"]


def lopt(*args, cwd, popen=False, **env):
    """`lopt *args` in a subprocess, with `env` added to the environment; `popen`: started, not awaited."""
    return (cli_process.start if popen else cli_process.run)(*args, cwd=cwd, env=cli_process.environment(**env))


@pytest.mark.parametrize("preset, target, values", [
    ("joblib", "hydra_joblib_launcher.joblib_launcher.JoblibLauncher", {"n_jobs": -1, "prefer": "processes"}),
    ("submitit_slurm", "hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
     {"tasks_per_node": 1, "cpus_per_task": 4, "timeout_min": 60, "partition": None}),
    ("submitit_local", "hydra_submitit_launcher.submitit_launcher.LocalLauncher", {"tasks_per_node": 1}),
    ("ray", "hydra_ray_launcher.ray_launcher.RayLauncher", {"ray": {"init": {"address": None},
                                                                    "remote": {"num_cpus": 1, "num_gpus": 0}}}),
])
def test_launcher_presets_compose_for_every_command(preset, target, values):
    with initialize_config_module(config_module="lopt_conf", version_base="1.3"):
        for config_name in ("meta_train", "evaluate", "baseline_sweep"):
            cfg = compose(config_name, [f"hydra/launcher={preset}"], return_hydra_config=True)
            launcher = OmegaConf.to_container(cfg.hydra.launcher)
            assert launcher["_target_"] == f"hydra_plugins.{target}"
            assert {k: launcher[k] for k in values} == values


def test_a_preset_whose_plugin_is_missing_names_the_extra_to_install():
    check_plugin("joblib")  # installed with lopt[test]
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        with pytest.raises(ConfigError, match=re.escape("pip install 'lopt[ray]'")):
            check_plugin("ray")


def test_a_plugin_whose_parent_package_is_absent_is_reported_not_raised(monkeypatch):
    """On a fresh install `hydra_plugins` itself does not exist, where `find_spec` of a dotted name
    raises ModuleNotFoundError instead of returning None."""
    monkeypatch.setitem(sys.modules, "lopt_no_such_parent", None)  # import fails even if it existed
    monkeypatch.setattr("lopt_cli.launchers.PLUGINS", {"joblib": ("lopt_no_such_parent.launcher", "joblib")})
    with pytest.raises(ConfigError, match=re.escape("pip install 'lopt[joblib]'")):
        check_plugin("joblib")


# Runs `lopt` with the hydra_plugins namespace package unimportable, as on an install without extras.
WITHOUT_PLUGINS = """
import sys
from importlib.abc import MetaPathFinder

class NoHydraPlugins(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hydra_plugins" or name.startswith("hydra_plugins."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoHydraPlugins())
from lopt_cli.main import main
sys.exit(main())
"""


def test_a_launcher_without_its_plugin_exits_2_naming_the_extra(tmp_path):
    out = subprocess.run([sys.executable, "-c", WITHOUT_PLUGINS, "meta-train", "--multirun", "hydra/launcher=joblib",
                          "seed=0,1"], cwd=tmp_path, env={**os.environ, "WANDB_MODE": "disabled"},
                         capture_output=True, text=True, timeout=600)
    err = " ".join(out.stderr.split())
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "lopt: error: hydra/launcher=joblib needs Hydra's joblib launcher plugin, which is not installed" in err
    assert "pip install 'lopt[joblib]'" in err
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("n_jobs, cpus, sweep_jobs, parallel", [
    (-1, 8, None, 8), (-1, 8, 3, 3), (-2, 8, None, 7), (2, 8, 10, 2), (4, 2, None, 4), (-1, 1, 5, 1), (-9, 4, 2, 1),
])
def test_parallel_jobs_follows_joblibs_n_jobs(n_jobs, cpus, sweep_jobs, parallel):
    assert parallel_jobs(n_jobs, cpus, sweep_jobs) == parallel


@pytest.mark.parametrize("cpus, parallel", [(8, 2), (8, 3), (16, 5), (2, 2), (4, 1)])
def test_core_shares_are_disjoint_and_cover_every_core(cpus, parallel):
    shares = [core_share(list(range(cpus)), slot, parallel) for slot in range(parallel)]
    assert sorted(c for share in shares for c in share) == list(range(cpus))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_more_jobs_than_cores_share_cores_round_robin():
    assert [core_share([4, 5], slot, 3) for slot in range(3)] == [[4], [5], [4]]


def _sweep_dirs(root):
    return sorted((root / "multirun" / "evaluate").glob("*/*"))


@pytest.fixture(scope="module")
def joblib_runs(tmp_path_factory):
    """The same joblib multirun (2 seeds, 2 workers) twice, each from a directory of its own, with a
    compilation cache of their own that stores every program: (directory, run, the cache's entries
    after the run) of each."""
    root = tmp_path_factory.mktemp("joblib")
    cache, runs = root / "xla", []
    for name in ("first", "second"):
        cwd = root / name
        cwd.mkdir()
        out = lopt("evaluate", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
                   *TINY_EVAL, cwd=cwd, LOPT_COMPILATION_CACHE=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
        assert out.returncode == 0, out.stderr
        runs.append((cwd, out, sorted(p.name for p in cache.iterdir()) if cache.exists() else []))
    return runs


def test_joblib_multirun_pins_jobs_and_logs_one_wandb_group(joblib_runs):
    cwd, out, _ = joblib_runs[0]
    (sweep,) = _sweep_dirs(cwd)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0", "1"] and all((j / "curves.json").exists() for j in jobs)
    # each worker pinned itself to its own share of the cores before JAX started
    shares = re.findall(r"job (\d): cores \[([\d, ]+)\], GPU memory fraction ([\d.]+)", out.stdout)
    cores = [set(map(int, c.split(","))) for _, c, _ in shares]
    assert sorted(n for n, _, _ in shares) == ["0", "1"] and all(float(f) == 0.45 for _, _, f in shares)
    if len(os.sched_getaffinity(0)) >= 2:
        assert not cores[0] & cores[1]
    # one W&B group per multirun: its sweep directory, recorded in every job's config
    groups = {OmegaConf.load(j / "config.yaml").tracking.group for j in jobs}
    assert groups == {str(sweep.relative_to(cwd))}


def test_every_invocation_gets_its_own_run_and_sweep_directories(tmp_path):
    """Two `lopt` processes started together resolve different directories (a random suffix per
    invocation, shared by the run and sweep directory of one invocation)."""
    procs = [lopt("evaluate", "--cfg", "hydra", "--resolve", cwd=tmp_path, popen=True) for _ in range(2)]
    dirs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        hydra_cfg = OmegaConf.create(out)
        dirs.append((hydra_cfg.hydra.run.dir, hydra_cfg.hydra.sweep.dir))
    (run_a, sweep_a), (run_b, sweep_b) = dirs
    assert run_a != run_b and sweep_a != sweep_b
    assert run_a.rsplit("_", 1)[1] == sweep_a.rsplit("_", 1)[1] and re.fullmatch(r"[0-9a-f]{6}", run_a[-6:])


@pytest.mark.slow  # the test above covers the directory naming; this runs the 2 x 2 jobs
def test_multiruns_started_in_the_same_second_never_collide(tmp_path):
    procs = [lopt("evaluate", "--multirun", "seed=0,1", *TINY_EVAL, cwd=tmp_path, popen=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    sweeps = _sweep_dirs(tmp_path)
    assert len(sweeps) == 2
    jobs = [j for s in sweeps for j in s.iterdir() if (j / "curves.json").exists()]
    assert len(jobs) == 4


def test_joblib_workers_use_the_compilation_cache(joblib_runs):
    """Workers are fresh processes: they must configure the persistent compilation cache themselves
    (they used to compile every program again). The first multirun stores its programs; the second
    finds them all and stores nothing new (CPU pinning does not enter the cache key)."""
    for _, out, _ in joblib_runs:
        assert len(re.findall(r"job \d: cores", out.stdout)) == 2  # both jobs ran in pinned joblib workers
    (_, _, first), (_, _, second) = joblib_runs
    assert first, "the joblib workers stored nothing in the compilation cache"
    assert second == first
