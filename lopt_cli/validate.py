"""Check a command's overrides before Hydra runs it, so user errors read as one paragraph.

Every value of every override (each value of a --multirun sweep too) is composed into the
command's config (`compose_overrides`); the CLI passes each config to the command's own `build`,
which validates names, types and ranges without loading data or compiling.
"""
import math
from importlib import resources
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from lopt.config import CONFIG_PACKAGE, config_file, config_groups, search_path_overrides
from lopt.errors import ConfigError, unknown_choice
from lopt_cli.launchers import check_plugin


def _values(override) -> list[str]:
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    return [override.get_value_element_as_str()]

def _selected(override, values: list[str]) -> list[str]:
    """The group options an override selects: several for a list (`family=[a,b]`)."""
    value = None if override.is_sweep_override() else override.value()
    return [str(v) for v in value] if isinstance(value, list) else values

def _override_error(key: str, value: str, err: Exception, base: Any) -> ConfigError:
    parts = key.split(".")
    for depth in range(len(parts) - 1, -1, -1):  # the deepest existing node on the key's path
        parent, leaf = ".".join(parts[:depth]), parts[depth]
        node = OmegaConf.select(base, parent) if parent else base
        if OmegaConf.is_dict(node):
            break
    if leaf not in node:
        where = f"under {parent!r}" if parent else "at the top level"
        return ConfigError(f"Unknown config key {key!r} (in override {key}={value}). "
                           f"Valid keys {where}: {', '.join(sorted(node.keys()))}.")
    return ConfigError(f"Cannot apply override {key}={value}: {str(err).splitlines()[0]}")

def _preset_groups(preset: str) -> tuple[set[str], set[str]]:
    """The groups an `experiment/` preset overrides and the top-level keys it sets."""
    node = config_file("experiment", f"{preset}.yaml")
    groups = set()
    for entry in node.get("defaults") or []:
        for key in (entry.keys() if OmegaConf.is_dict(entry) else [entry]):
            groups.add(str(key).removeprefix("override").strip().lstrip("/").split(":")[0])
    return groups, {str(k) for k in node if k != "defaults"}


def help_config_groups(choices: Any, keys: Any) -> str:
    """The `group: options` lines of a command's --help: the groups of its defaults list (its
    Hydra `choices`), and `experiment` when a preset fits the command (every group it overrides is
    one of those, every key it sets is one of the config's top-level `keys`)."""
    groups = config_groups()
    shown = {str(g) for g in choices if g in groups}
    names, keys = set(shown), {str(k) for k in keys}
    for preset in groups.get("experiment", []):
        overridden, set_keys = _preset_groups(preset)
        if overridden <= names and set_keys <= keys | names:
            shown.add("experiment")
    return "".join(f"{g}: {', '.join(groups[g])}\n" for g in sorted(shown))


def launcher_options() -> list[str]:
    """The `hydra/launcher=` presets: Hydra's in-process `basic` and lopt's (conf/hydra/launcher/)."""
    presets = resources.files(CONFIG_PACKAGE) / "hydra" / "launcher"
    return sorted(["basic", *(f.name[: -len(".yaml")] for f in presets.iterdir() if f.name.endswith(".yaml"))])


def _check_launcher(values: list[str]) -> None:
    for value in values:
        if value not in launcher_options():
            raise unknown_choice("launcher (hydra/launcher=)", value, launcher_options())
        check_plugin(value)


def compose_overrides(config_name: str, args: list[str]) -> tuple[list[DictConfig], int]:
    """The configs that check every value of `args` (Hydra's own flags skipped): the first values
    of the sweeps, and each other value of a sweep with the others at their first; a ConfigError
    for the first bad override or option. And the number of jobs the overrides make (the product
    of the sweeps' lengths). The command's `build` checks each config's values."""
    try:
        parsed = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException as err:
        raise ConfigError(f"Cannot parse the overrides {' '.join(args)!r}: {str(err).splitlines()[0]}") from None
    for o in parsed:
        if o.get_key_element().lstrip("+~") == "hydra/launcher":
            _check_launcher(_values(o))
    parsed = [o for o in parsed if not o.get_key_element().lstrip("+~").startswith("hydra")]
    groups = config_groups()
    choices = []
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        values = _values(o)
        if key in groups:
            for v in _selected(o, values):
                if v not in groups[key]:
                    raise unknown_choice(f"{key} option ({key}=)", v, groups[key])
        choices.append([f"{o.get_key_element()}={v}" for v in values])
    firsts = [c[0] for c in choices]
    variants = {tuple(firsts[:i] + [v] + firsts[i + 1:]) for i, c in enumerate(choices) for v in c}
    configs = []
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        base = _compose(config_name, [])
        for variant in sorted(variants) or [()]:
            try:
                configs.append(_compose(config_name, list(variant)))
            except HydraException as err:
                bad, selected = _first_bad(config_name, variant, groups)
                key, _, value = bad.partition("=")
                raise _override_error(key.lstrip("+~"), value, err, _compose_or(config_name, selected, base)) from None
    return configs, math.prod(len(c) for c in choices)


def _first_bad(config_name: str, variant: tuple[str, ...], groups: dict[str, list[str]]
               ) -> tuple[str, list[str]]:
    """The override of `variant` that makes composition fail on top of the variant's group choices
    (`estimator.trunc_length=5` fails only with `estimator=full_es`), and those choices."""
    selected = [o for o in variant if o.split("=")[0].lstrip("+~") in groups]
    for override in variant:
        try:
            _compose(config_name, selected + ([] if override in selected else [override]))
        except HydraException:
            return override, selected
    return variant[-1], selected


def _compose_or(config_name: str, overrides: list[str], fallback: Any) -> Any:
    """The config with `overrides`, or `fallback` where they do not compose."""
    try:
        return _compose(config_name, overrides)
    except HydraException:
        return fallback


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Hydra's composition of `overrides`, with the user's config directories on its search path."""
    return compose(config_name, overrides=[*overrides, *search_path_overrides()])
