"""Pretrained learned optimizers shipped in the package: `theta=pretrained:<name>` wherever a theta
is taken, and from Python in one line:

    from lopt.learned.export import optimizer
    opt = optimizer("pretrained:<name>", num_steps=1000)  # an optax transformation
    updates, state = opt.update(grads, state, params, loss=loss)

Each is a directory here laid out as a finished meta-train run, so every command reads it as one:
`config.yaml` (the run's config: its `lopt` node is the architecture), `final_theta/` (the
meta-parameters, an orbax checkpoint) and `card.md` (the model card: the exact command, the compute
and machine, and the scores with their intervals; its first line is the one-line summary that
`--help` shows).
"""
from pathlib import Path

from lopt.errors import UserError

PREFIX = "pretrained:"
ROOT = Path(__file__).parent

__all__ = ["PREFIX", "names", "path", "resolve", "summary"]


def names() -> list[str]:
    """The shipped optimizers, sorted."""
    return sorted(p.name for p in ROOT.iterdir() if (p / "final_theta").is_dir() and (p / "config.yaml").is_file())


def path(name: str, key: str = "theta") -> Path:
    """The run directory of the shipped optimizer `name` (config key `key` named it)."""
    if name not in names():
        shipped = ", ".join(f"{PREFIX}{n}" for n in names()) or "none in this installation"
        raise UserError(f"{key}={PREFIX}{name} is not a shipped pretrained optimizer. Valid choices: {shipped}.")
    return ROOT / name


def resolve(given: str | Path, key: str = "theta") -> str | Path:
    """`given` with `pretrained:<name>` replaced by that optimizer's directory; anything else as is."""
    text = str(given)
    return path(text.removeprefix(PREFIX), key) if text.startswith(PREFIX) else given


def summary(name: str) -> str:
    """The first line of the model card, without its heading marks."""
    return (path(name) / "card.md").read_text().splitlines()[0].lstrip("# ").strip()
