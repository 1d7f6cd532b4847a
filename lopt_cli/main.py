"""`lopt COMMAND [overrides]`: validate the overrides, then hand them to the command's Hydra app."""
import importlib
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from lopt.errors import UserError, unknown_choice

_HYDRA_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve",
                "--shell-completion", "-sc", "--version")


@dataclass(frozen=True)
class Command:
    config_name: str
    summary: str
    module: str  # module with build(cfg) (validation) and run(cfg, run_dir, console) -> summary

    def load(self) -> Any:
        return importlib.import_module(self.module)


COMMANDS = {
    "meta-train": Command("meta_train", "meta-train a learned optimizer (PES + small_fc_lopt by default)",
                          "lopt.meta_train"),
    "baseline-sweep": Command("baseline_sweep", "tune a hand-designed optimizer: LR grid or random search x seeds, vectorized",
                              "lopt.sweep"),
    "evaluate": Command("evaluate", "training curves of a hand-designed or learned optimizer, many seeds",
                        "lopt.evaluate"),
}

_RUN_SUFFIX = secrets.token_hex(3)


def _usage() -> str:
    lines = ["usage: lopt COMMAND [key=value ...] [--multirun] [--help]", "", "commands:"]
    lines += [f"  {name:<14}{c.summary}" for name, c in COMMANDS.items()]
    lines += ["", "`lopt COMMAND --help` shows the command's config groups and every value."]
    return "\n".join(lines)


def _error(err: Exception) -> int:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]lopt: error:[/] {err}", highlight=False)
    return 2


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("lopt_uid"):
        # One random suffix per process keeps run directories unique within the same second.
        OmegaConf.register_new_resolver("lopt_uid", lambda: _RUN_SUFFIX)


def _enable_compilation_cache() -> None:
    """Reuse XLA executables across runs (a rerun or the jobs of a sweep skip recompiling).
    $LOPT_COMPILATION_CACHE picks the directory; set it empty to turn the cache off."""
    cache = os.environ.get("LOPT_COMPILATION_CACHE", os.path.expanduser("~/.cache/lopt/xla"))
    if cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _job(name: str, module: Any) -> Callable[[Any], None]:
    def job(cfg: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        from lopt.tracking import summary_table

        console = Console()
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            summary = module.run(cfg, run_dir, console)
        except UserError as err:
            sys.exit(_error(err))
        except KeyboardInterrupt:
            console.print(f"[yellow]Interrupted; checkpoints written so far are in {run_dir}.[/]")
            sys.exit(130)
        console.print(summary_table(f"lopt {name}", summary))

    return job


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        return _error(unknown_choice("command", name, list(COMMANDS)))
    command = COMMANDS[name]
    module = command.load()
    _register_resolvers()
    if not any(a.split("=")[0] in _HYDRA_FLAGS for a in rest):
        from lopt_cli.validate import validate

        try:
            validate(command.config_name, rest, module.build)
        except UserError as err:
            return _error(err)
    import hydra

    _enable_compilation_cache()
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    sys.argv = [f"lopt {name}", *rest]
    app = hydra.main(version_base="1.3", config_path="pkg://lopt_conf", config_name=command.config_name)
    app(_job(name, module))()
    return 0


if __name__ == "__main__":
    sys.exit(main())
