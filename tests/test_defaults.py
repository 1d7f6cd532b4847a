"""Every config group option's YAML lists exactly the fields of its dataclass, at their defaults.

Defaults live twice: as dataclass field defaults (what the Python API and `from_config` use for a
key the node leaves out) and as YAML values (what users run, and what `--help` shows). This test
loads each `conf/<group>/<option>.yaml`, picks its class through the group's registry (or the
group's single class) and fails, naming the file, the key, the YAML value and the dataclass
default, when the two disagree, when the YAML leaves a field out or when it has a key that is no
field.

The groups in NOT_CHECKED are not restatements of defaults (see there).
"""
import dataclasses
from pathlib import Path
from typing import Any

import lopt_conf
import pytest
from omegaconf import OmegaConf

from lopt import estimators, learned, schedules
from lopt.commands import COMMANDS
from lopt.config import config_groups
from lopt.data.settings import DataSettings
from lopt.io.tracking import TrackingSettings
from lopt.optimizers import hand_designed, outer
from lopt.platform import distributed
from lopt.population.settings import PopulationSettings
from lopt.tasks import family
from lopt.unroll import meta_loss
from tests.conftest import compose

CONF = Path(lopt_conf.__file__).parent

# group -> the registry of its options, or the one class its single `default` option configures.
GROUPS = {
    "lopt": learned.REGISTRY,
    "estimator": estimators.REGISTRY,
    "schedule": schedules.REGISTRY,
    "meta_loss": meta_loss.REGISTRY,
    "outer_opt": outer.REGISTRY,
    "optimizer": hand_designed.REGISTRY,
    "family": family.KINDS,  # options named <kind>_family, selected by `kind`
    "data": DataSettings,
    "tracking": TrackingSettings,
    "distributed": distributed.Settings,
    "population": PopulationSettings,
}

SKIPPED_KEYS: set[str] = set()  # keys that are no dataclass field by design (none today)

# Config groups whose options are not the defaults of one dataclass each.
NOT_CHECKED = {
    "task": "different presets (dataset, sizes) of a few shared task classes",
    "experiment": "@package _global_ recipes that override other groups and top-level settings",
    "suite": "lists of task configs composed from task/ (tests/evaluation/test_suite.py parses every one)",
}

_MISSING = object()


def default_of(field: dataclasses.Field) -> Any:
    """The field's default (from `default_factory` if it has one), or _MISSING if it has none."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _MISSING


def as_yaml(value: Any) -> Any:
    """`value` as the YAML would spell it: tuples (and nested ones) as lists."""
    if isinstance(value, (tuple, list)):
        return [as_yaml(v) for v in value]
    if isinstance(value, dict):
        return {k: as_yaml(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind: floats compare with ==, but a bool never equals a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def assert_matches_defaults(cls: type, node: dict, where: str, skip: tuple[str, ...] = ()) -> None:
    """Fail, naming `where` (the YAML file or config path), the key, the YAML value and the
    dataclass default, unless `node` has exactly the init fields of dataclass `cls` (keys in
    `skip` and SKIPPED_KEYS aside), each at its default. A field without a default must be
    present; its value is not compared. `node` is a plain dict (without the registry's selecting
    key)."""
    ignored = SKIPPED_KEYS | set(skip)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in ignored}
    problems = []
    for key in sorted(set(node) - set(fields) - ignored):
        problems.append(f"{where}: key {key!r} (value {node[key]!r}) is no field of {cls.__name__}")
    for name, field in fields.items():
        default = default_of(field)
        if dataclasses.is_dataclass(default) and isinstance(node.get(name), dict):  # a nested settings node
            assert_matches_defaults(type(default), node[name], f"{where}.{name}")
            continue
        if name not in node:
            shown = "no default" if default is _MISSING else f"its default {as_yaml(default)!r}"
            problems.append(f"{where}: field {cls.__name__}.{name} ({shown}) is missing from the YAML")
        elif default is not _MISSING and not same(node[name], as_yaml(default)):
            problems.append(f"{where}: {name}: YAML value {node[name]!r} != dataclass default "
                            f"{cls.__name__}.{name} = {as_yaml(default)!r}")
    assert not problems, "\n".join(problems)


def _options() -> list[tuple[str, str]]:
    return [(group, path.stem) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))]


def test_every_registry_option_has_a_yaml_and_every_group_is_checked():
    shipped = {p.parent.name for p in CONF.glob("*/*.yaml")} - {"hydra"}
    assert shipped == set(GROUPS) | set(NOT_CHECKED), "add the new config group to GROUPS or NOT_CHECKED"
    for group, registry in GROUPS.items():
        if not isinstance(registry, type):
            selected = {OmegaConf.load(p).get(registry.key) for p in (CONF / group).glob("*.yaml")}
            assert selected == set(registry.names()), group


@pytest.mark.parametrize("group, option", _options(), ids=[f"{g}/{o}" for g, o in _options()])
def test_yaml_matches_dataclass_defaults(group, option):
    where = f"conf/{group}/{option}.yaml"
    if (group, option) == ("outer_opt", "lopt"):
        # Its Hydra defaults list composes a whole lopt-group option into the `lopt` node.
        node = OmegaConf.to_container(compose("meta_train", "outer_opt=lopt").outer_opt, resolve=True)
    else:
        node = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{option}.yaml"), resolve=True)
        node.pop("defaults", None)
    registry = GROUPS[group]
    if isinstance(registry, type):
        cls = registry
    else:
        if registry.key == "name":
            assert node.get(registry.key) == option, f"{where}: name must be {option!r}"
        cls = registry.get(node.pop(registry.key))
    if cls is outer.LearnedOuter:
        # `lopt`'s dataclass default only names the architecture ({"name": "small_fc_lopt"}, whose
        # other fields default); the YAML composes that option in full: check it as one.
        nested = node["lopt"]
        default = default_of(next(f for f in dataclasses.fields(cls) if f.name == "lopt"))
        assert nested.get("name") == default["name"], (
            f"{where}: lopt.name: YAML value {nested.get('name')!r} != dataclass default "
            f"{cls.__name__}.lopt = {default!r}")
        assert_matches_defaults(learned.REGISTRY.get(nested.pop("name")), nested, f"{where} (lopt)")
        assert_matches_defaults(cls, node, where, skip=("lopt",))
    else:
        assert_matches_defaults(cls, node, where)


@pytest.mark.parametrize("name", sorted(n for n, c in COMMANDS.items() if c.config_name))  # export: plain arguments
def test_command_settings_match_their_yaml(name):
    """conf/<command>.yaml's top-level keys (those that are no config group) are the fields of the
    command's Settings, at their defaults; a nested settings node (baseline-sweep's `sweep`) too."""
    command = COMMANDS[name]
    where = f"conf/{command.config_name}.yaml"
    node = OmegaConf.to_container(OmegaConf.load(CONF / f"{command.config_name}.yaml"), resolve=False)
    for key in ("defaults", "hydra", *config_groups()):
        node.pop(key, None)
    cls = command.load().Settings
    nested = [f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(default_of(f))]
    for field_name in nested:
        default = default_of(next(f for f in dataclasses.fields(cls) if f.name == field_name))
        assert_matches_defaults(type(default), node.pop(field_name), f"{where} ({field_name})")
    assert_matches_defaults(cls, node, where, skip=tuple(nested))
