"""The recipe blocks of experiment presets' headers: what a preset says its recipe is, as claims a
test checks against the composed config.

A block starts at the header line `# recipe:` and takes the indented comment lines after it, which
are YAML once their leading `# ` is stripped. Its groups map a config key to a value:
`as_reference` (the reference's value, which the preset sets), `lopt_only` (a setting with no
counterpart in the reference) and `deviations` (`preset`, `reference` and `why`: the preset's value,
the reference's, and the reason they differ). `inherits: <preset>` takes that preset's claims first;
the block's own replace them key by key. Besides config keys (`outer_opt.lr`), a claim may name
`families` (how many task unrolls meta-training averages) or `tasks.<field>` (that field of each
training task's config, in order; null where a task has none).
"""
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from omegaconf import OmegaConf

GROUPS = ("as_reference", "lopt_only", "deviations")


@dataclass(frozen=True)
class Claim:
    """One claim of a recipe block: the preset's `value` for a key, with the reference's value and
    the reason where the group is `deviations`."""

    group: str
    value: Any
    reference: Any = None
    why: str = ""


def _text(name: str) -> str:
    return (resources.files("lopt_conf") / "experiment" / f"{name}.yaml").read_text()


def block(name: str) -> dict | None:
    """The parsed recipe block of preset `name` (None when its header has none)."""
    lines = _text(name).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# recipe:")), None)
    if start is None:
        return None
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("#  "):
            break
        body.append(line[2:])
    parsed = yaml.safe_load("\n".join(body))
    assert isinstance(parsed, dict), f"{name}: the recipe block is not a mapping"
    return parsed


def presets_with_recipes() -> list[str]:
    """The shipped presets whose header has a recipe block."""
    names = sorted(f.name[: -len(".yaml")] for f in (resources.files("lopt_conf") / "experiment").iterdir()
                   if f.name.endswith(".yaml"))
    return [n for n in names if block(n) is not None]


def claims(name: str) -> dict[str, Claim]:
    """Every claim of preset `name`'s recipe, inherited ones first, by key."""
    parsed = block(name)
    assert parsed is not None, f"{name}: its header has no recipe block"
    unknown = set(parsed) - {*GROUPS, "inherits"}
    assert not unknown, f"{name}: unknown recipe groups {sorted(unknown)}"
    result = claims(parsed["inherits"]) if "inherits" in parsed else {}
    for group in GROUPS:
        for key, value in (parsed.get(group) or {}).items():
            if group == "deviations":
                assert isinstance(value, dict) and set(value) == {"preset", "reference", "why"}, (
                    f"{name}: deviation {key} must give preset, reference and why")
                result[key] = Claim(group, value["preset"], value["reference"], value["why"])
            else:
                result[key] = Claim(group, value)
    return result


def is_derived(key: str) -> bool:
    """Whether `key` is read from the built run (families, tasks.<field>) rather than the config."""
    return key == "families" or key.startswith("tasks.")


def config_claims(name: str) -> dict[str, Any]:
    """The preset's claimed values of config keys (derived keys left out)."""
    return {k: c.value for k, c in claims(name).items() if not is_derived(k)}


def _plain(value: Any) -> Any:
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def actual(cfg: Any, task_configs: list, key: str) -> Any:
    """The value `key` has in the composed `cfg` (or, for a derived key, in its `task_configs`)."""
    if key == "families":
        return len(task_configs)
    if key.startswith("tasks."):
        return [_plain(getattr(t, key[len("tasks."):], None)) for t in task_configs]
    return _plain(OmegaConf.select(cfg, key, default="<missing>"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def mismatches(cfg: Any, build: Callable[[Any], Any], recipe: Mapping[str, Claim]) -> list[str]:
    """Each claim of `recipe` that the composed `cfg` (built by `build` for the derived keys) does
    not bear out, and each deviation whose preset value is the reference's, as a message."""
    task_configs = list(build(cfg).task_configs)
    problems = []
    for key, claim in recipe.items():
        value = actual(cfg, task_configs, key)
        if not _same(value, claim.value):
            problems.append(f"{key}: the header says {claim.value!r}, the config has {value!r}")
        if claim.group == "deviations" and (_same(claim.value, claim.reference) or not str(claim.why).strip()):
            problems.append(f"{key}: a deviation must differ from the reference ({claim.reference!r}) and say why")
    return problems
