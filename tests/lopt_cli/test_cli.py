"""The `lopt` command as a user runs it: overrides in, files in a run directory (in a subprocess where the
entrypoint itself is what is tested, else in this process through the same `main`)."""
import json
import subprocess
import sys
import warnings

import pytest

from tests import cli_process

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled", "num_tasks=2",
        "estimator.trunc_length=2", "schedule.length=6", "outer_iterations=3", "log_every=1",
        "checkpoint_every=2", "task.hidden=[8]"]
# evaluate's tiny sizes, the same in every evaluation: those of one optimizer then compile one program
EVAL = ["data.source=synthetic", "data.synthetic_examples=64", "task.hidden=[8]", "num_seeds=2", "num_steps=10",
        "eval_every=5", "tracking.mode=disabled"]




def test_top_level_help_lists_commands(lopt_here, capsys):
    assert lopt_here("--help") == 0
    out = capsys.readouterr().out
    assert "meta-train" in out and "evaluate" in out


@pytest.fixture(scope="module")
def meta_run(tmp_path_factory):
    """One tiny meta-training run shared by the tests that read its outputs."""
    cwd = tmp_path_factory.mktemp("meta")
    out = cli_process.run("meta-train", *TINY, "hydra.run.dir=run", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return cwd / "run", out


def test_meta_train_writes_a_complete_run_directory(meta_run):
    run, out = meta_run
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["outer_iteration"] for r in records] == [1, 2, 3]
    for key in ("outer/loss", "outer/grad_norm", "perf/inner_steps_per_s", "time/wall_s"):
        assert key in records[-1]
    assert 0 < records[-1]["outer/loss"] <= 1.5 * 2.31
    assert (run / "config.yaml").read_text().count("trunc_length: 2") == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["2", "3"]
    assert (run / "final_theta").is_dir()
    assert "final_outer_loss" in out.stdout and str(run.name) in out.stdout

    # the checkpoint restores to the live state's structure
    import jax

    from lopt.io.checkpoint import load_tree
    from lopt.learned import SmallFCLOpt
    theta = load_tree(run / "final_theta", SmallFCLOpt().init_theta(jax.random.PRNGKey(0)))
    assert theta["nn"]["w0"].shape == (39, 4)


def test_run_directories_are_unique_for_runs_started_together(tmp_path):
    procs = [cli_process.start("meta-train", *TINY, "outer_iterations=1", cwd=tmp_path) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=600)
    assert [p.returncode for p in procs] == [0, 0]
    runs = list((tmp_path / "outputs" / "meta-train").glob("*/*"))
    assert len(runs) == 2 and all((r / "metrics.jsonl").exists() for r in runs)


def test_unknown_command(lopt_here, capsys):
    assert lopt_here("meta-trian") == 2
    assert "Unknown command 'meta-trian'. Valid choices: baseline-sweep, evaluate, export, meta-train." in capsys.readouterr().err


def test_evaluate_a_meta_trained_optimizer_from_its_run_directory(meta_run, lopt_here, tmp_path):
    run, _ = meta_run
    assert lopt_here("evaluate", "lopt=small_fc_lopt", f"theta={run}", *EVAL, "hydra.run.dir=ev") == 0
    result = json.loads((tmp_path / "ev" / "curves.json").read_text())
    assert result["optimizer"] == "small_fc_lopt" and result["checkpoint"] == str(run / "final_theta")
    assert result["eval/xs"] == [0, 5, 10]
    assert len(result["curves"]["train/loss"]["per_seed"]) == 2
    assert (tmp_path / "ev" / "curves.png").stat().st_size > 0
    assert not list((tmp_path / "ev").glob(".*tmp*"))


def test_baseline_sweep_ranks_results_and_evaluate_compares_to_its_best(lopt_here, tmp_path, capsys):
    common = [*EVAL, "optimizer=sgd"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the diverged configuration's NaNs are no numpy warning
        assert lopt_here("baseline-sweep", *common, "sweep.lrs=[1e-3,1e-1,1e30]", "hydra.run.dir=sw") == 0
    run = tmp_path / "sw"
    configs = json.loads((run / "sweep.json").read_text())["configurations"]
    best = json.loads((run / "best.json").read_text())["configuration"]
    assert configs[-1]["hyperparameters"]["lr"] == 1e30 and configs[-1]["diverged"]  # NaN loss, ranked last
    means = [c["metrics"]["mean/eval/train/loss"]["mean"] for c in configs[:2]]
    assert means == sorted(means) and best == configs[0]
    assert (run / "sweep.png").stat().st_size > 0

    # evaluating the best configuration itself against the sweep reproduces the baseline's numbers
    best_lr = best["hyperparameters"]["lr"]
    capsys.readouterr()
    assert lopt_here("evaluate", *common, f"optimizer.lr={best_lr}", f"compare_to={run / 'best.json'}",
                     "hydra.run.dir=ev") == 0
    comparison = json.loads((tmp_path / "ev" / "curves.json").read_text())["comparison"]
    assert comparison["target_loss"] == pytest.approx(best["metrics"]["final/eval/train/loss"]["mean"])
    ev, base = comparison["evaluated"], comparison["baseline"]
    assert ev["final_loss"] == pytest.approx(base["final_loss"], rel=1e-4)
    assert ev["mean_loss"] == pytest.approx(best["metrics"]["mean/eval/train/loss"]["mean"], rel=1e-4)
    assert ev["steps_to_target"] == base["steps_to_target"] is not None
    assert "vs the tuned baseline sgd lr=0.1" in " ".join(capsys.readouterr().out.split())


def test_evaluate_theta_alone_takes_the_architecture_of_its_run(meta_run, lopt_here, tmp_path):
    run, _ = meta_run
    assert lopt_here("evaluate", f"theta={run / 'final_theta'}", *EVAL, "hydra.run.dir=ev") == 0
    from omegaconf import OmegaConf

    config = OmegaConf.load(tmp_path / "ev" / "config.yaml")
    assert config.lopt == OmegaConf.load(run / "config.yaml").lopt and config.lopt.name == "small_fc_lopt"
    result = json.loads((tmp_path / "ev" / "curves.json").read_text())
    assert result["optimizer"] == "small_fc_lopt" and result["learned"]


@pytest.mark.parametrize("command, args, message", [
    ("evaluate", ["lopt=fc_lopt"], "was meta-trained with lopt=small_fc_lopt but lopt=fc_lopt is configured: "
                                   "drop lopt= (and lopt.* overrides) to use the run's architecture, or give a run "
                                   "of fc_lopt."),
    ("evaluate", ["lopt.hidden_size=5"], "was meta-trained with lopt=small_fc_lopt (hidden_size=4) but "
                                         "lopt=small_fc_lopt (hidden_size=5) is configured"),
    ("meta-train", [*TINY, "lopt=fc_lopt"], "was meta-trained with lopt=small_fc_lopt but lopt=fc_lopt is configured"),
])
def test_a_lopt_contradicting_the_theta_run_is_refused(meta_run, lopt_here, tmp_path, capsys, command, args, message):
    assert lopt_here(command, f"theta={meta_run[0]}", *args, "tracking.mode=disabled") == 2
    out, err = capsys.readouterr()
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert not (tmp_path / "outputs").exists()


def test_theta_alone_selects_the_stored_architecture_with_its_options(tmp_path):
    from lopt.commands.composed import with_theta_architecture as theta_architecture

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("lopt:\n  name: fc_lopt\n  hidden_size: 8\n")
    args = [f"theta={run}", "seed=1"]
    assert theta_architecture("meta_train", args) == [*args, "lopt=fc_lopt", "lopt.hidden_size=8"]
    assert theta_architecture("evaluate", [f"theta={run}/final_theta"])[1:] == ["lopt=fc_lopt", "lopt.hidden_size=8"]
    assert theta_architecture("evaluate", [*args, "lopt.hidden_size=3"]) == [*args, "lopt.hidden_size=3", "lopt=fc_lopt"]
    for unchanged in ([*args, "lopt=small_fc_lopt"], ["seed=1"], [f"theta={tmp_path / 'nope'}"]):
        assert theta_architecture("meta_train", unchanged) == unchanged
    assert theta_architecture("baseline_sweep", args) == args


def test_top_level_help_keeps_a_space_between_every_command_and_its_summary(monkeypatch):
    from lopt.commands import COMMANDS
    from lopt_cli import main as cli

    long = "a-command-name-longer-than-any-column"
    monkeypatch.setattr(cli, "COMMANDS", {**COMMANDS, long: COMMANDS["evaluate"]})
    lines = cli._usage().split("commands:\n")[1].split("\n\n")[0].splitlines()
    assert len(lines) == len(COMMANDS) + 1
    for line, (name, command) in zip(lines, cli.COMMANDS.items()):
        assert line.startswith(f"  {name}  ") and line.endswith(command.summary)
    assert len({line.index(c.summary) for line, c in zip(lines, cli.COMMANDS.values())}) == 1  # one column


@pytest.mark.parametrize("command, expected", [
    ("meta-train", "Resume with: lopt meta-train {overrides} 'resume={run}'"),
    ("evaluate", "Interrupted; the run directory is {run}."),
])
def test_ctrl_c_names_the_run_and_for_meta_train_the_command_that_resumes_it(command, expected, tmp_path, lopt_here,
                                                                            monkeypatch, capsys):
    import importlib

    from lopt.commands import COMMANDS

    handed = []

    def interrupted(cfg, run_dir, console, components):
        handed.append(components)
        (run_dir / "checkpoints").mkdir(parents=True)  # something to resume from
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(COMMANDS[command].module), "run", interrupted)
    overrides = ["data.source=synthetic", "task.hidden=[8]", "seed=3"] + (["num_tasks=2"] if command == "meta-train"
                                                                         else ["num_seeds=2"])
    code = lopt_here(command, *overrides, "hydra.run.dir=run dir")
    out = " ".join(capsys.readouterr().out.split())
    assert code == 130
    run = tmp_path / "run dir"
    quoted = " ".join(f"'{o}'" if "[" in o else o for o in overrides)
    assert expected.format(overrides=quoted, run=run) in out
    assert handed[0].settings.seed == 3  # the job took the components the CLI built while validating


def test_library_chatter_stays_off_the_terminal(tmp_path):
    """JAX probing for a TPU and TFDS scanning an unprepared data.dir log at levels Hydra's job
    logging shows; importing lopt_cli (as `lopt` and its launcher workers do) quiets them."""
    script = ("import logging, lopt_cli; logging.basicConfig(level=logging.INFO); import jax; jax.devices(); "
              "from absl import logging as absl_logging; "
              "absl_logging.warning('Variant folder %s has no %s', '/data/cifar10/3.0.2', 'dataset_info.json'); "
              "absl_logging.warning('kept')")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Unable to initialize backend" not in out.stderr and "dataset_info.json" not in out.stderr
    assert "kept" in out.stderr  # other warnings still show


def test_baseline_sweep_says_which_configured_hyperparameters_it_sweeps_over():
    from lopt.commands.baseline_sweep import overridden_by_sweep
    from lopt.optimizers.hand_designed import Adam, NAdamW
    from lopt.training.sweep import SweepSettings

    grid = SweepSettings(lrs=(1e-3, 1e-2))
    assert overridden_by_sweep(Adam(lr=0.01), ["lr"], grid) == (
        "optimizer.lr=0.01 is swept over by sweep.lrs=[0.001, 0.01]: the sweep's values are used.")
    assert overridden_by_sweep(Adam(), ["lr"], grid) is None  # the default: nothing the user set is lost
    assert overridden_by_sweep(Adam(lr=0.01, b1=0.5), ["lr"], grid).startswith("optimizer.lr=0.01 is")  # b1 is kept
    assert overridden_by_sweep(Adam(lr=0.01), ["lr"], SweepSettings(lr_range=(1e-3, 1e-2))) == (
        "optimizer.lr=0.01 is swept over by sweep.lr_range=[0.001, 0.01] (grid [0.001, 0.003, 0.01]): the sweep's "
        "values are used.")
    random = SweepSettings(num_samples=4)
    assert overridden_by_sweep(NAdamW(b1=0.8, eps=1e-6), list(NAdamW().hyperparameters()), random) == (
        "optimizer.b1=0.8, optimizer.eps=1e-06 are swept over by the random search (sweep.num_samples=4): the "
        "sweep's values are used.")


def test_evaluate_says_when_every_seed_diverged_without_numpy_warnings(lopt_here, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "Mean of empty slice" and the like
        assert lopt_here("evaluate", "optimizer=sgd", "optimizer.lr=1e30", *EVAL, "hydra.run.dir=ev") == 0
    lines = [" ".join(line.replace("│", " ").split()) for line in capsys.readouterr().out.splitlines()]
    assert "final/eval/train/loss diverged" in lines and "mean/eval/train/loss diverged" in lines
    assert "diverged_seeds 2" in lines
    summary = json.loads((tmp_path / "ev" / "curves.json").read_text())["summary"]
    assert summary["diverged_seeds"] == 2 and summary["final/eval/train/loss"] == "diverged"


def test_evaluate_build_takes_a_swept_thetas_architecture(tmp_path):
    """`--multirun theta=a,b` is not rewritten by the CLI: `build` reads each run's architecture."""
    from lopt.commands import evaluate
    from lopt.config import compose

    run = tmp_path / "run"
    (run / "final_theta").mkdir(parents=True)
    (run / "final_theta" / "_METADATA").write_text("{}")  # stands for the checkpoint; nothing is read
    (run / "config.yaml").write_text("lopt:\n  name: fc_lopt\n  hidden_size: 8\n")
    cfg = compose("evaluate", [f"theta={run}"])
    c = evaluate.build(cfg)
    assert c.evaluated.learned and c.evaluated.architecture.hidden_size == 8
    assert cfg.get("lopt") is None  # the config stays as composed
