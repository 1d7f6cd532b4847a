"""The `lopt` commands, one module each (`build` validates a config, `run` executes it), on the
skeleton of `lopt.commands.base`; and `build`, the library's way to build what a command runs on."""
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from lopt.commands.composed import compose_command
from lopt.errors import UserError, unknown_choice


@dataclass(frozen=True)
class Command:
    """A command: its config (conf/<config_name>.yaml; None: the module's `main(argv)` parses plain
    arguments), one-line summary and module."""

    config_name: str | None
    summary: str
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


COMMANDS = {
    "meta-train": Command("meta_train", "meta-train a learned optimizer (PES + small_fc_lopt by default)",
                          "lopt.commands.meta_train"),
    "baseline-sweep": Command("baseline_sweep", "tune a hand-designed optimizer: LR grid or random search x seeds, "
                              "vectorized", "lopt.commands.baseline_sweep"),
    "evaluate": Command("evaluate", "training curves of a hand-designed or learned optimizer, many seeds",
                        "lopt.commands.evaluate"),
    "export": Command(None, "a trained optimizer as a self-contained folder: theta, config, model card, checksums",
                      "lopt.commands.export"),
}


def build(command: str, overrides: Sequence[str] = ()) -> Any:
    """The components `lopt <command> *overrides` runs on (`build("meta-train", ["task=digits_mlp"])`):
    the config composed and validated, every component built; no data loaded, nothing compiled.
    `components.load_data()` loads the data (meta-train: every variant's; evaluate and
    baseline-sweep without `suite=`: the task's). Bad input raises a `lopt.errors.UserError`."""
    if command not in COMMANDS:
        raise unknown_choice("command", command, list(COMMANDS))
    c = COMMANDS[command]
    if c.config_name is None:
        raise UserError(f"`lopt {command}` has no config to build: it takes plain arguments (lopt {command} --help).")
    return c.load().build(compose_command(c.config_name, overrides))
