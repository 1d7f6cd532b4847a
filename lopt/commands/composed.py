"""The config a command runs, the same from the CLI, the scripts and the library: its overrides
composed, where `theta=<run>` without `lopt=` also selects the architecture that run was
meta-trained with (`with_theta_architecture`)."""
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from lopt.config import compose, config_file, config_groups, override_value
from lopt.io.theta_files import stored_architecture


def with_theta_architecture(config_name: str, overrides: Sequence[str]) -> list[str]:
    """`overrides`, plus `lopt=<name>` and the `lopt.<option>=` overrides that select the
    architecture the run named by `theta=<run>` was meta-trained with (its config.yaml's `lopt`
    node) when the command takes `theta` and no `lopt=` override is given: `theta=` alone picks the
    architecture (`lopt.*` overrides given with it stay, and `build` refuses them where they
    contradict the run). Left as they are: a swept theta (`theta=a,b`), a run that recorded no
    known architecture, and overrides that do not parse (the command's `build` and validation
    say what is wrong)."""
    args = list(overrides)
    if "theta" not in config_file(f"{config_name}.yaml"):
        return args
    try:
        parsed = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException:
        return args
    keys = [o.get_key_element().lstrip("+~") for o in parsed]
    thetas = [o for o in parsed if o.get_key_element() == "theta" and not o.is_sweep_override()]
    if not thetas or "lopt" in keys:
        return args
    value = thetas[-1].value()  # parsed (the string form escapes `pretrained:<name>`'s colon)
    stored = stored_architecture(value if isinstance(value, str) else None)
    name = None if stored is None else stored.get("name")
    if name not in config_groups().get("lopt", []):
        return args
    preset = OmegaConf.to_container(config_file("lopt", f"{name}.yaml"), resolve=True)
    assert isinstance(stored, dict) and isinstance(preset, dict)
    options = [f"lopt.{k}={override_value(v)}" for k, v in stored.items()
               if k != "name" and k in preset and v != preset[k] and f"lopt.{k}" not in keys]
    return [*args, f"lopt={name}", *options]


def compose_command(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config of `lopt <command> *overrides` (`config_name`: the command's, `meta_train`)."""
    return compose(config_name, with_theta_architecture(config_name, overrides))
