"""Turn config nodes into typed, validated frozen dataclasses.

Every component of lopt (task, learned optimizer, estimator, schedule, outer optimizer) is a frozen
dataclass built from its config node by `from_config`; registries map a node's `name` to the class.
Unknown keys, wrong types and out-of-range values become one-line `ConfigError`s that name the
config path, the bad value and what is valid, before anything is compiled.
"""
import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf

from lopt.errors import ConfigError, unknown_choice

T = TypeVar("T")
CONFIG_PACKAGE = "lopt_conf"  # conf/, installed as a package


_user_search_path: list[str] | None = None  # the user's config directories (Hydra search-path URLs), set by the CLI


def use_search_path(urls: Sequence[str]) -> None:
    """Make the config directories `urls` (`file://<dir>` or `pkg://<module>`: a `--config-dir`, the
    entries of `hydra.searchpath`) part of every composition and option listing in this process,
    after the shipped package (a shipped option of the same name wins, as in Hydra)."""
    global _user_search_path
    _user_search_path = list(urls)


def user_search_path() -> list[str]:
    """The user's config directories: those of the running Hydra job (its `--config-dir` and
    `hydra.searchpath`, also in a launcher's subprocess) unless `use_search_path` set them."""
    from hydra.core.hydra_config import HydraConfig

    if _user_search_path is not None or not HydraConfig.initialized():
        return list(_user_search_path or [])
    sources = HydraConfig.get().runtime.config_sources
    return [f"{s.schema}://{s.path}" for s in sources if s.provider not in ("hydra", "main", "schema")]


def _root(url: str) -> Any:
    """The directory a search-path URL names (`file://<dir>` or `pkg://<module>`)."""
    scheme, _, path = url.partition("://")
    if scheme == "pkg":
        return resources.files(path.replace("/", "."))
    return Path(path if scheme == "file" else url)


def config_roots() -> list[Any]:
    """Where config files are looked up, in Hydra's order: the shipped package, then the user's directories."""
    return [resources.files(CONFIG_PACKAGE), *(_root(u) for u in user_search_path())]


def config_groups() -> dict[str, list[str]]:
    """Config groups (subdirectories of the config directories) and their options: the shipped
    package's and those of the user's config directories (`use_search_path`)."""
    groups: dict[str, set[str]] = {}
    for root in config_roots():
        if not root.is_dir():
            continue
        for d in root.iterdir():
            if d.is_dir() and d.name not in ("hydra", "__pycache__"):
                names = {f.name[: -len(".yaml")] for f in d.iterdir() if f.name.endswith(".yaml")}
                groups.setdefault(d.name, set()).update(names)
    return {g: sorted(names) for g, names in groups.items()}


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config `config_name` (a command's, `meta_train`) with Hydra `overrides` applied, as
    `lopt` composes it (inside a running command: with that command's search path; else with the
    user's config directories). A config that does not compose is a ConfigError with Hydra's reason."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():
            return hydra_compose(config_name, overrides=list(overrides))
        with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
            return hydra_compose(config_name, overrides=[*overrides, *search_path_overrides()])
    except HydraException as err:
        command = " ".join(["lopt", config_name.replace("_", "-"), *overrides])
        raise ConfigError(f"`{command}` does not compose: {str(err).splitlines()[0]}") from None


def search_path_overrides() -> list[str]:
    """The override that gives a composition the user's config directories (none without them)."""
    urls = user_search_path()
    return [f"hydra.searchpath=[{','.join(urls)}]"] if urls else []


def config_file(*parts: str) -> Any:
    """A YAML file of the config directories (`config_file("lopt", "fc_lopt.yaml")`): the shipped
    package's, else the first user directory's that has it, as an OmegaConf node."""
    roots = config_roots()
    found = next((r.joinpath(*parts) for r in roots if r.joinpath(*parts).is_file()), roots[0].joinpath(*parts))
    return OmegaConf.create(found.read_text())


def override_value(value: Any) -> str:
    """`value` in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    text = str(value)
    try:  # bare when a shell keeps it whole and Hydra reads it back as this string (`synthetic`, a path)
        if re.fullmatch(r"[\w./:@+-]+", text) and OverridesParser.create().parse_override(f"k={text}").value() == text:
            return text
    except HydraException:
        pass
    return "'" + text.replace("'", "\\'") + "'"


def to_plain(node: Any) -> Any:
    """A resolved plain-Python copy of an OmegaConf node (other values pass through)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def join(path: str, key: str) -> str:
    """Dotted config path of `key` under `path` ('' is the top level)."""
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


class _NotFinite(ConfigError):
    """A float config value that is inf or NaN: the right type, but never a valid setting."""


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check `value` against annotation `tp`; ints are accepted where floats are expected, and
    every float must be finite (no config value means anything at inf or NaN)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, path)
            except _NotFinite:
                raise
            except ConfigError:
                pass
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise ConfigError(f"{path}={value!r} has the wrong type: expected {names}.")
    if origin is typing.Literal:  # a choice among fixed values: exactly one of them (True is not 1)
        choices = typing.get_args(tp)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        raise ConfigError(f"{path}={value!r} is invalid: it must be one of {list(choices)}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}={value!r} has the wrong type: expected a list.")
        item_tp = typing.get_args(tp)[0]  # lopt uses homogeneous tuple[X, ...] only
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _NotFinite(f"{path}={value!r} is invalid: it must be a finite number.")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is dict:  # a nested config node, validated by the component that builds it
        if isinstance(value, dict):
            return value
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a nested node with settings of its own
        if isinstance(value, dict):
            return from_config(tp, value, path)
    raise ConfigError(f"{path}={value!r} has the wrong type: expected {_type_name(tp)}.")


def from_config(cls: type[T], node: Mapping[str, Any], path: str, ignore: tuple[str, ...] = ()) -> T:
    """Build dataclass `cls` from `node`, validating keys, types and the class's own checks."""
    values = {k: to_plain(v) for k, v in (to_plain(node) or {}).items()}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields) - set(ignore))
    if unknown:
        raise ConfigError(
            f"Unknown key {join(path, unknown[0])}. Valid keys: {', '.join(sorted(fields))}."
        )
    kwargs = {
        k: _coerce(v, hints[k], join(path, k)) for k, v in values.items() if k in fields
    }
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ConfigError(join(path, str(err))) from None


def check(ok: bool, name: str, value: Any, valid: str) -> None:
    """Raise the ValueError that `from_config` turns into a path-qualified ConfigError."""
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: it must be {valid}.")


class Registry:
    """Maps the option name in a config node (its `key`: `name`, or `kind` for tasks and task
    families) to the dataclass that implements it. Every registry is one table, written where the
    package lists what it offers (its `__init__`, or the module of a single-file component)."""

    def __init__(self, what: str, classes: Mapping[str, type], key: str = "name", default: str | None = None):
        self.what, self.key, self.default = what, key, default
        self._classes = dict(classes)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def classes(self) -> tuple[type, ...]:
        return tuple(self._classes.values())

    def get(self, name: Any, path: str = "") -> type:
        """The class registered as `name` (a ConfigError listing the names if there is none)."""
        if name not in self._classes:
            raise unknown_choice(f"{self.what} ({join(path, self.key)})", name, self.names())
        return self._classes[name]

    def build(self, node: Mapping[str, Any], path: str) -> Any:
        """Instantiate the class that `node[key]` names with the node's other keys."""
        values = dict(to_plain(node) or {})
        cls = self.get(values.pop(self.key, self.default), path)
        return from_config(cls, values, path)
