"""Bad input to every command: one paragraph naming the value and what is valid, exit status 2, no
traceback, and nothing written (no run directory is left behind)."""
import time

import jax
import pytest
from omegaconf import OmegaConf

from lopt import learned
from lopt.io.checkpoint import save_tree
from tests import cli_process
from tests.conftest import compose

ALL = ["meta-train", "evaluate", "baseline-sweep"]
LEARNED = {"meta-train": [], "evaluate": ["lopt=small_fc_lopt"]}  # commands that load a learned optimizer
POP = ["population=self_training", "eval.tasks=[wine_mlp]", "eval.num_steps=20"]  # a valid population
CASES = [  # (commands, overrides, message); OTHER_ARCH and EMPTY_DIR are filled in by the fixture
    # unknown group options
    (ALL, ["task=nope"], "Unknown task option (task=) 'nope'. Valid choices: breast_cancer_mlp, cifar_ae, "),
    (["evaluate", "baseline-sweep"], ["optimizer=rmsprop"],
     "Unknown optimizer option (optimizer=) 'rmsprop'. Valid choices: adam, nadamw, sgd, sgdm."),
    (["meta-train", "evaluate"], ["lopt=big"], "Unknown lopt option (lopt=) 'big'. Valid choices: celo, celo2, fc_lopt, "),
    (["meta-train"], ["estimator=nope"], "Unknown estimator option (estimator=) 'nope'. Valid choices: es, "),
    (["meta-train"], ["schedule=nope"], "Unknown schedule option (schedule=) 'nope'. Valid choices: choice, "),
    (["meta-train"], ["outer_opt=nope"], "Unknown outer_opt option (outer_opt=) 'nope'. Valid choices: adam, "),
    (ALL, ["--multirun", "hydra/launcher=slurm"], "Unknown launcher (hydra/launcher=) 'slurm'. Valid choices: "
                                                  "basic, joblib, ray, submitit_local, submitit_slurm."),
    (ALL, ["estimator.stdd=1"], "Unknown config key 'estimator.stdd'"),
    (["meta-train"], ["estimator=full_es", "estimator.trunc_length=5"],  # a key of the default option only
     "Unknown config key 'estimator.trunc_length' (in override estimator.trunc_length=5). Valid keys under "
     "'estimator': name, normalize_task_grads, std."),
    (["evaluate"], ["--cfg", "job", "task=nope"], "Could not find 'task/nope' Available options in 'task': breast_cancer_mlp cifar_ae "),
    (["evaluate"], ["--multirun", "seed=0,1", "--cfg", "job"], "--cfg and --multirun cannot be combined"),
    # wrong types
    (ALL, ["seed=abc"], "seed='abc' has the wrong type: expected int."),
    (["meta-train"], ["outer_iterations=1.5"], "outer_iterations=1.5 has the wrong type: expected int."),
    (["meta-train"], ["random_initial_offset=maybe"], "random_initial_offset='maybe' has the wrong type: expected bool."),
    (["evaluate", "baseline-sweep"], ["num_seeds=five"], "num_seeds='five' has the wrong type: expected int."),
    (["evaluate"], ["optimizer.lr=fast"], "optimizer.lr='fast' has the wrong type: expected float."),
    (["baseline-sweep"], ["sweep.lrs=abc"], "sweep.lrs='abc' has the wrong type: expected a list."),
    (ALL, ["data.download=perhaps"], "data.download='perhaps' has the wrong type: expected bool."),
    # negative or zero sizes
    (["meta-train"], ["num_tasks=0"], "num_tasks=0 is invalid: it must be a positive integer."),
    (["meta-train"], ["outer_iterations=-1"], "outer_iterations=-1 is invalid: it must be a positive integer."),
    (["meta-train"], ["estimator.trunc_length=0"], "estimator.trunc_length=0 is invalid: it must be a positive integer."),
    (["meta-train"], ["schedule.length=0"], "schedule.length=0 is invalid: it must be a positive integer."),
    (ALL, ["task.batch_size=0"], "task.batch_size=0 is invalid: it must be a positive integer."),
    (ALL, ["task.hidden=[0]"], "=(0,) is invalid: it must be positive integers."),
    (ALL, ["data.synthetic_examples=-4"], "data.synthetic_examples=-4 is invalid: it must be a positive integer."),
    (["evaluate", "baseline-sweep"], ["num_seeds=0"], "num_seeds=0 is invalid: it must be a positive integer."),
    (["evaluate", "baseline-sweep"], ["num_steps=-5"], "num_steps=-5 is invalid: it must be a positive integer."),
    (["evaluate"], ["num_steps=7"], "num_steps=7 is invalid: it must be a multiple of eval_every=5."),
    (["baseline-sweep"], ["sweep.batch_size=0"], "sweep.batch_size=0 is invalid: it must be null or a positive integer."),
    (["baseline-sweep"], ["sweep.lrs=[]"], "sweep.lrs=() is invalid: it must be a non-empty list of positive floats."),
    (["meta-train"], ["--multirun", "num_tasks=2,-3"], "num_tasks=-3 is invalid: it must be a positive integer."),
    # a truncation longer than the schedule's shortest inner problem
    (["meta-train"], ["estimator.trunc_length=300"],
     "estimator.trunc_length=300 is longer than the shortest inner problems (schedule min length 200): it must be "
     "at most 200."),
    (["meta-train"], ["schedule=linear", "estimator.trunc_length=60"], "(schedule min length 40): it must be at most 40."),
    # missing checkpoint or results paths
    (LEARNED, ["theta=/nonexistent/run"],
     "theta='/nonexistent/run' does not exist: give a meta-train run directory, its final_theta/ or its best_theta/ directory, "
     "or a shipped optimizer as pretrained:<name>."),
    (LEARNED, ["theta=pretrained:nope"], "theta=pretrained:nope is not a shipped pretrained optimizer. Valid choices:"),
    (["meta-train"], ["outer_opt=lopt", "outer_opt.theta=/nonexistent"],
     "outer_opt.theta='/nonexistent' does not exist"),
    (["evaluate"], ["compare_to=/nonexistent/best.json"], "compare_to='/nonexistent/best.json' does not exist."),
    # empty, a file, or a directory without a checkpoint where a run directory is expected
    (LEARNED, ["theta="], "theta='' is empty: give a meta-train run directory, its final_theta/ or its best_theta/ directory, or "
                          "a shipped optimizer as pretrained:<name>, or leave theta unset."),
    (["meta-train"], ["outer_opt=lopt", "outer_opt.theta="], "outer_opt.theta='' is empty"),
    (["evaluate"], ["compare_to="], "compare_to='' is empty: pass the best.json or sweep.json of a `lopt "
                                    "baseline-sweep` run, or leave compare_to unset."),
    (["evaluate"], ["compare_to=NO_CKPT_DIR"], "compare_to='NO_CKPT_DIR' is a directory: pass the best.json or "
                                               "sweep.json"),
    (LEARNED, ["theta=GARBAGE_FILE"], "theta='GARBAGE_FILE' is a file, not a run directory: give a meta-train run "
                                      "directory, its final_theta/ or its best_theta/ directory, or a shipped "
                                      "optimizer as pretrained:<name>."),
    (LEARNED, ["theta=NO_CKPT_DIR"], "theta='NO_CKPT_DIR' holds no checkpoint: give a meta-train run directory, its "
                                     "final_theta/ or its best_theta/ directory, or a shipped optimizer as "
                                     "pretrained:<name> (a run directory holds the trained "
                                     "meta-parameters in final_theta/, written when the run finishes)."),
    (["meta-train"], ["outer_opt=lopt", "outer_opt.theta=NO_CKPT_DIR"], "outer_opt.theta='NO_CKPT_DIR' holds no "
                                                                        "checkpoint"),
    (LEARNED, ["theta=UNFINISHED_RUN"], "It has checkpoints/ but no final_theta/: the run has not finished (resume "
                                        "it with `lopt meta-train resume=UNFINISHED_RUN`)."),
    # a checkpoint of another architecture (fc_lopt's theta where small_fc_lopt's is expected)
    (LEARNED, ["theta=OTHER_ARCH"], "theta does not fit the configured learned optimizer "
                                    "(SmallFCLOpt): The checkpoint OTHER_ARCH/final_theta does not match"),
    # a run whose config.yaml names another architecture
    (["meta-train", "evaluate"], ["lopt=small_fc_lopt", "theta=FC_RUN"],
     "theta='FC_RUN' was meta-trained with lopt=fc_lopt but "),
    (["meta-train"], ["outer_opt=lopt", "outer_opt.theta=FC_RUN"],
     "outer_opt.theta='FC_RUN' was meta-trained with lopt=fc_lopt but this run configures "
     "outer_opt.lopt.name=small_fc_lopt: set outer_opt.lopt.name=fc_lopt (with the options in FC_RUN/config.yaml) "
     "or give a run of small_fc_lopt."),
    # floats that are not finite, in every command the same way
    (["evaluate", "baseline-sweep"], ["optimizer.lr=inf"], "optimizer.lr=inf is invalid: it must be a finite number."),
    (["evaluate", "baseline-sweep"], ["optimizer=nadamw", "optimizer.b1=nan"],
     "optimizer.b1=nan is invalid: it must be a finite number."),
    (["baseline-sweep"], ["sweep.lrs=[1e-3,inf]"], "sweep.lrs[1]=inf is invalid: it must be a finite number."),
    (["meta-train"], ["outer_opt.lr=-inf"], "outer_opt.lr=-inf is invalid: it must be a finite number."),
    (["meta-train"], ["outer_opt=adam", "outer_opt.max_norm=inf"],  # float | None: still a finite float
     "outer_opt.max_norm=inf is invalid: it must be a finite number."),
    (["meta-train"], ["estimator.std=nan"], "estimator.std=nan is invalid: it must be a finite number."),
    (["meta-train"], ["estimator.std=-1"], "estimator.std=-1.0 is invalid: it must be a positive float."),
    # a value outside a fixed set
    (ALL, ["data.source=web"], "data.source='web' is invalid: it must be one of ['real', 'synthetic']."),
    (ALL, ["tracking.mode=loud"], "tracking.mode='loud' is invalid"),
    # a choice among fixed values: the old boolean of normalize_task_grads is refused, naming the modes
    (["meta-train"], ["estimator.normalize_task_grads=true"],
     "estimator.normalize_task_grads=True is invalid: it must be one of ['none', 'family', 'problem']."),
    (["meta-train"], ["estimator=full_es", "estimator.normalize_task_grads=sign"],
     "estimator.normalize_task_grads='sign' is invalid: it must be one of ['none', 'family', 'problem']."),
    # missing TFDS data on a machine that cannot download it
    (ALL, ["task=conv_cifar", "data.dir=EMPTY_DIR"], "TFDS dataset 'cifar10' is not prepared in EMPTY_DIR and could "
                                                     "not be downloaded here"),
    (["meta-train"], ["task=fmnist_mlp", "data.dir=EMPTY_DIR", "data.download=false"],
     "TFDS dataset 'fashion_mnist' is not prepared in EMPTY_DIR"),
    (["meta-train"], ["--multirun", "task=conv_cifar", "data.dir=EMPTY_DIR", "seed=0,1"],
     "job 1 (task=conv_cifar data.dir=EMPTY_DIR seed=1 tracking.mode=disabled): TFDS dataset 'cifar10' is not prepared"),
    # task suites: checked before any data loads or anything compiles
    (["evaluate", "baseline-sweep"], ["suite=nope"], "Unknown suite option (suite=) 'nope'. Valid choices: "),
    (["evaluate", "baseline-sweep"], ["suite=smoke", "~suite.tasks"],
     "suite.tasks of suite 'smoke' is empty: a suite needs at least one task"),
    (["evaluate", "baseline-sweep"], ["suite=smoke", "suite.tasks.digits_mlp.batch_size=0"],
     "suite.tasks.digits_mlp.batch_size=0 is invalid: it must be a positive integer."),
    (["evaluate", "baseline-sweep"], ["suite=smoke", "suite.tasks.quadratic.num_steps=45"],
     "suite.tasks.quadratic.num_steps=45 is invalid: it must be a multiple of suite.eval_every=10."),
    (["evaluate", "baseline-sweep"], ["suite=smoke", "num_seeds=0"], "num_seeds=0 is invalid: it must be a positive integer."),
    (["evaluate"], ["suite=smoke", "baselines.dir=EMPTY_DIR"],
     "No adam baseline for task 'digits_mlp' in EMPTY_DIR (key "),
    (["evaluate"], ["suite=smoke", "baselines.dir=EMPTY_DIR"],
     "Make the missing baselines with `lopt baseline-sweep suite=smoke optimizer=adam baselines.dir=EMPTY_DIR`"),
    (["meta-train"], ["eval.every=1", "eval.tasks=[digits_mlp]", "eval.baselines.dir=EMPTY_DIR"],
     "Pass eval.baselines.run_missing=true: the run then sweeps them first (`lopt baseline-sweep` makes baselines "
     "of a shipped suite's tasks only)."),
    (["evaluate"], ["suite=smoke", "baselines.optimizer=rmsprop"],
     "Unknown baselines.optimizer 'rmsprop'. Valid choices: adam, nadamw, sgd, sgdm."),
    (["evaluate"], ["suite=smoke", "smoothing=1.0"], "smoothing=1.0 is invalid: it must be in [0, 1)"),
    (["evaluate", "baseline-sweep"], ["suite=smoke", "baselines.horizon_mult=0"],
     "baselines.horizon_mult=0 is invalid: it must be a positive integer (the baselines run that many times each "
     "task's length; VeLO: 10)"),
    # population self-training: refused before any data loads or anything compiles
    (["meta-train"], [*POP, "population.size=0"], "population.size=0 is invalid: it must be a positive integer"),
    (["meta-train"], [*POP, "population.exploit_every=0"],
     "population.exploit_every=0 is invalid: it must be a positive integer (outer iterations between exploit steps)."),
    (["meta-train"], [*POP, "population.trunc_lengths=[]"],
     "population.trunc_lengths=[] is invalid: it must be a non-empty list of positive integers."),
    (["meta-train"], [*POP, "population.trunc_lengths=[10,300]"],
     "population.trunc_lengths=[10, 300] is invalid for this schedule: estimator.trunc_length=300 is longer than "
     "the shortest inner problems"),
    (["meta-train"], [*POP, "population.outer=lopt"], "population.outer='lopt' is invalid: it must be one of self, adam, "),
    (["meta-train"], [*POP, "population.backend=slurm"], "population.backend='slurm' is invalid: it must be one of local, ray."),
    (["meta-train"], ["population=self_training"], "population needs evaluation tasks to compare its members on: set "
                                                   "eval.suite, eval.tasks or eval.training_tasks"),
    (["meta-train"], [*POP, "estimator=full_es"], "population needs a truncated estimator"),
]
PARAMS = [pytest.param(command, [*LEARNED.get(command, []), *args] if commands is LEARNED else args, message,
                       id=f"{command} {' '.join(args)}")
          for commands, args, message in CASES for command in commands]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """fc_lopt meta-train run directories (theta only; theta and config.yaml), an empty TFDS data
    directory, an empty directory, an unfinished run (checkpoints/ only) and a file that is not a run."""
    root = tmp_path_factory.mktemp("inputs")
    cfg = compose("meta_train", "lopt=fc_lopt")
    theta = learned.build(cfg.lopt).init_theta(jax.random.PRNGKey(0))
    save_tree(root / "fc_run" / "final_theta", theta)
    save_tree(root / "fc_run_config" / "final_theta", theta)
    OmegaConf.save(cfg, root / "fc_run_config" / "config.yaml", resolve=True)
    for directory in ("tfds", "empty", "unfinished/checkpoints"):
        (root / directory).mkdir(parents=True)
    (root / "garbage.bin").write_bytes(b"\x00not a checkpoint")
    return {"OTHER_ARCH": str(root / "fc_run"), "EMPTY_DIR": str(root / "tfds"), "FC_RUN": str(root / "fc_run_config"),
            "NO_CKPT_DIR": str(root / "empty"), "UNFINISHED_RUN": str(root / "unfinished"),
            "GARBAGE_FILE": str(root / "garbage.bin")}


def _fill(text: str, inputs: dict[str, str]) -> str:
    for placeholder, value in inputs.items():
        text = text.replace(placeholder, value)
    return text


@pytest.mark.parametrize("command, args, message", PARAMS)
def test_bad_input_is_one_paragraph_exit_2_and_writes_nothing(command, args, message, inputs, lopt_here, tmp_path, capsys):
    quiet = [] if any(a.startswith("tracking.mode=") for a in args) else ["tracking.mode=disabled"]
    code = lopt_here(command, *[_fill(a, inputs) for a in args], *quiet)
    out, err = capsys.readouterr()
    assert code == 2
    assert _fill(message, inputs) in " ".join(err.split())
    errors = err.split("lopt: error: ")[1:]
    assert errors and all("\n\n" not in e.strip() for e in errors)  # each error one paragraph
    assert "Traceback" not in out + err
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


def test_a_multirun_job_that_fails_does_not_stop_the_others(inputs, lopt_here, tmp_path, capsys):
    """Both jobs run (and fail on their own); the sweep exits 2 and leaves nothing behind."""
    code = lopt_here("evaluate", "--multirun", "task=conv_cifar", f"data.dir={inputs['EMPTY_DIR']}", "seed=0,1",
                "tracking.mode=disabled")
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "lopt: error: job 0 (" in err and "lopt: error: job 1 (" in err
    assert not (tmp_path / "multirun").exists()


def test_the_command_line_exits_2_without_a_traceback_and_fast_when_data_is_missing(inputs, tmp_path):
    """The real entry point, in a subprocess, with downloads allowed (the default) but impossible."""
    start = time.perf_counter()
    out = cli_process.run("evaluate", "task=conv_cifar", f"data.dir={inputs['EMPTY_DIR']}", "tracking.mode=disabled",
                          cwd=tmp_path, timeout=300)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "Error executing job" not in out.stderr
    assert "TFDS dataset 'cifar10' is not prepared" in " ".join(out.stderr.split())
    for noise in ("dataset_info.json", "Variant folder", "Unable to initialize backend"):  # library chatter
        assert noise not in out.stdout + out.stderr
    assert time.perf_counter() - start < 120  # no network hang
    assert not (tmp_path / "outputs").exists()


def test_the_ray_backend_without_ray_installed_is_refused_naming_the_extra(lopt_here, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert lopt_here("meta-train", *POP, "population.backend=ray", "tracking.mode=disabled") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert ("population.backend='ray' is invalid: it must be local, or ray with Ray installed (pip install "
            "'lopt[ray]'): the ray package is not installed.") in err
    assert not (tmp_path / "outputs").exists()


def test_the_missing_baseline_hint_of_meta_train_is_a_command_that_makes_them(lopt_here, tmp_path, capsys):
    """Evaluating the meta-training suite's tasks with no stored baseline names the baseline-sweep
    that makes them (the suite meta-training draws from, not the evaluation's own group name): run
    as printed, it makes every baseline the run needs."""
    from lopt import commands

    args = ["suite=smoke", "eval.every=1", "eval.training_tasks=true", f"eval.baselines.dir={tmp_path / 'b'}",
            "data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled"]
    assert lopt_here("meta-train", *args) == 2
    hint = " ".join(capsys.readouterr().err.split()).split("Make the missing baselines with `")[1].split("`")[0]
    assert hint.startswith("lopt baseline-sweep suite=smoke optimizer=adam ")
    assert lopt_here(*hint.split()[1:], "num_seeds=1", "tracking.mode=disabled") == 0  # seeds: not in the key
    commands.build("meta-train", args)  # every baseline found: no error


def test_the_resume_hint_for_an_unfinished_run_is_the_command_that_finishes_it(lopt_here, tmp_path, capsys):
    """A theta from a run killed before it ended names the command that resumes it, with the run's
    own overrides (a bare resume= would be refused for a different config): run as printed, it
    finishes the run, and the theta then loads."""
    import shlex

    from tests.conftest import CHEAP

    evaluate = ["data.source=synthetic", "data.synthetic_examples=64", "num_seeds=2", "num_steps=10", "eval_every=5",
                "tracking.mode=disabled"]
    run = tmp_path / "killed"
    args = [*CHEAP, "outer_iterations=100", "checkpoint_every=2", "task.hidden=[8]"]
    cli_process.kill_after_checkpoint("meta-train", *args, f"hydra.run.dir={run}", cwd=tmp_path, run_dir=run, step=2)
    assert lopt_here("evaluate", f"theta={run}", *evaluate) == 2
    said = " ".join(capsys.readouterr().err.split())
    hint = said.split("the run has not finished (resume it with `")[1].split("`")[0]
    assert hint.startswith("lopt meta-train data.source=synthetic ") and hint.endswith(f"resume={run}")
    assert lopt_here(*shlex.split(hint)[1:]) == 0
    assert (run / "final_theta").is_dir()
    assert lopt_here("evaluate", f"theta={run}", *evaluate) == 0
