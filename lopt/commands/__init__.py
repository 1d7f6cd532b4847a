"""The `lopt` commands, one module each (`build` validates a config, `run` executes it), on the
skeleton of `lopt.commands.base`."""
import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Command:
    """A command: its config (conf/<config_name>.yaml), one-line summary and module."""

    config_name: str
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
}
