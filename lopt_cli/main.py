"""`lopt COMMAND [overrides]`: validate the overrides, then hand them to the command's Hydra app."""
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from lopt.commands import COMMANDS, Command
from lopt.errors import UserError, unknown_choice
from lopt_cli import enable_compilation_cache
from lopt_cli.job import RUN_UID_ENV, Job, JobFailed, print_error, prune_empty
from lopt_cli.launchers import SWEEP_JOBS_ENV

_HYDRA_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve",
                "--shell-completion", "-sc", "--version")
_MODES = {"--multirun": "--multirun", "-m": "--multirun", "--cfg": "--cfg", "-c": "--cfg", "--info": "--info",
          "-i": "--info", "--shell-completion": "--shell-completion", "-sc": "--shell-completion"}


def _usage() -> str:
    lines = ["usage: lopt COMMAND [key=value ...] [--multirun] [--help]", "", "commands:"]
    width = max(map(len, COMMANDS)) + 2  # every name, however long, keeps two spaces before its summary
    lines += [f"  {name:<{width}}{c.summary}" for name, c in COMMANDS.items()]
    lines += ["", "`lopt COMMAND --help` shows the command's config groups and every value."]
    return "\n".join(lines)


def _status(done: SystemExit) -> int:
    """The exit status a `SystemExit` stands for (its code; None is success, a message failure)."""
    return done.code if isinstance(done.code, int) else int(done.code is not None)


def _error(err: Exception) -> int:
    print_error(str(err))
    return 2


def _run_app(command: Command, name: str, built: dict[str, Any]) -> int:
    """Run the command's Hydra app on sys.argv, its jobs taking the components `built` for their
    config where validation built them; its exit status (a multirun's: that of its first failed
    job). Hydra's errors (e.g. in --cfg/--help paths, which skip validation) read as one paragraph
    too."""
    import hydra
    from hydra.errors import HydraException

    app = hydra.main(version_base="1.3", config_path="pkg://lopt_conf", config_name=command.config_name)
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises job failures to us instead of printing tracebacks
    try:
        app(Job(name, command.module, built))()
    except SystemExit as done:  # a failed single run, or Hydra's own exit (--help, --cfg)
        return _status(done)
    except JobFailed as failed:
        sweep = Path(failed.sweep_dir)
        if sweep.is_dir() and not any(p.is_dir() for p in sweep.iterdir()):
            shutil.rmtree(sweep)  # no job of the multirun wrote anything
            prune_empty(sweep.parent, Path.cwd())
        return failed.exit_code
    except HydraException as err:
        if full_error == "1":
            raise
        return _error(UserError(str(err).strip().replace("\n", " ")))
    finally:
        if full_error is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
    return 0


def _run_in_resumed_dir(args: list[str]) -> list[str]:
    """`resume=<run dir>` runs the job in that directory, so Hydra's own files go there too."""
    resume = [a.partition("=")[2] for a in args if a.startswith("resume=")]
    if not resume or resume[-1] in ("", "null") or any(a.startswith("hydra.run.dir=") for a in args):
        return args
    if "--multirun" in args or "-m" in args:
        raise UserError("resume= continues one run; to resume the jobs of a multirun, launch it again with "
                        "hydra.sweep.dir=<its sweep directory> (each job continues from its checkpoints).")
    return [*args, f"hydra.run.dir={resume[-1]}"]


def _check_run_dir_free(args: list[str]) -> None:
    """Refuse, before Hydra writes its records there, a single run into a directory (`hydra.run.dir=`,
    `resume=`) that a live lopt process holds (the job takes the lock itself: `lopt.io.run_lock`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lopt.io import run_lock
    from lopt.platform import distributed

    given = [a for a in args if a.startswith("hydra.run.dir=")]
    if not given or "--multirun" in args or "-m" in args or not distributed.is_main_process():
        return  # the other processes of a multi-process run share process 0's lock
    value = OverridesParser.create().parse_override(given[-1]).value()
    if isinstance(value, str) and "${" not in value:
        run_lock.check_free(Path(value).absolute())


def _search_path(args: list[str]) -> tuple[list[str], list[str]]:
    """The user's config directories the arguments name, as Hydra search-path URLs in Hydra's order
    (`--config-dir DIR` / `-cd DIR`, then the entries of `hydra.searchpath=[...]`), and the
    arguments without the `--config-dir` flag and its value, which validation does not parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    rest, dirs, urls = [], [], []
    words = iter(args)
    for word in words:
        flag, eq, value = word.partition("=")
        if flag in ("--config-dir", "-cd"):
            value = value if eq else next(words, "")
            if not value or value.startswith("-") or ("=" in value and not Path(value).is_dir()):
                raise UserError(f"{flag} needs a directory: `lopt <command> {flag} ./my_conf suite=<a suite in it>`.")
            dirs.append(value)
        else:
            rest.append(word)
        if flag == "hydra.searchpath":
            try:
                entries = OverridesParser.create().parse_override(word).value()
            except HydraException as err:
                raise UserError(f"Cannot parse {word!r}: {str(err).splitlines()[0]}. Give a list of config "
                                f"directories: hydra.searchpath=[file://$PWD/my_conf].") from None
            urls = [str(e) for e in entries] if isinstance(entries, list) else [str(entries)]
    found = [*(f"file://{os.path.abspath(d)}" for d in dirs), *urls]
    for url in found:
        scheme, _, path = url.partition("://")
        if scheme == "file" and not Path(path).is_dir():
            raise UserError(f"The config directory {path!r} (from {url}) does not exist. --config-dir takes a "
                            f"directory of your own config groups (suite/, task/, experiment/, ...), "
                            f"hydra.searchpath a list of file://<directory> or pkg://<module> entries.")
        if scheme not in ("file", "pkg"):
            raise UserError(f"hydra.searchpath entry {url!r} names no config directory: use file://<directory> "
                            f"or pkg://<module>.")
    return found, rest


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        return _error(unknown_choice("command", name, list(COMMANDS)))
    command = COMMANDS[name]
    if command.config_name is None:  # plain arguments, no Hydra config
        try:
            return command.load().main(rest)
        except UserError as err:
            return _error(err)
        except SystemExit as done:  # argparse's --help and usage errors
            return _status(done)
    modes = sorted({_MODES[a.split("=")[0]] for a in rest if a.split("=")[0] in _MODES})
    if len(modes) > 1:
        return _error(UserError(f"{' and '.join(modes)} cannot be combined: give one of --multirun, --cfg, --info "
                                f"and --shell-completion."))
    from lopt.config import use_search_path

    try:
        search_path, checked = _search_path(rest)
    except UserError as err:
        return _error(err)
    use_search_path(search_path)  # the user's config groups: composed, listed and validated with the shipped ones
    enable_compilation_cache()
    module = command.load()
    from lopt.commands.composed import with_theta_architecture

    theta_architecture = with_theta_architecture(command.config_name, checked)[len(checked):]
    rest = [*rest, *theta_architecture]  # theta=<run> alone: the run's architecture
    built: dict[str, Any] = {}
    if not any(a.split("=")[0] in _HYDRA_FLAGS for a in rest):
        from lopt.commands.base import config_key, join
        from lopt_cli import supervisor
        from lopt_cli.validate import compose_overrides

        try:
            configs, jobs = compose_overrides(command.config_name, [*checked, *theta_architecture])
            if supervisor.needed(configs[0]):  # one process of several: run it as a supervised child
                return supervisor.run(args, configs[0])
            join(configs[0])  # building can touch a device: a multi-process launch is joined first
            built = {config_key(cfg): module.build(cfg) for cfg in configs}  # every value checked
            os.environ[SWEEP_JOBS_ENV] = str(jobs)
            rest = _run_in_resumed_dir(rest)
            _check_run_dir_free(rest)
        except UserError as err:
            return _error(err)
    os.environ[RUN_UID_ENV] = secrets.token_hex(3)  # fresh per invocation: unique run directories
    sys.argv = [f"lopt {name}", *rest]
    return _run_app(command, name, built)


if __name__ == "__main__":
    sys.exit(main())
