from dataclasses import dataclass

import pytest

from lopt.config import Registry, check, from_config, override_value
from lopt.errors import ConfigError


@dataclass(frozen=True)
class Example:
    size: int = 1
    rate: float = 0.5
    decays: tuple[float, ...] = (0.9,)
    path: str | None = None

    def __post_init__(self):
        check(self.size > 0, "size", self.size, "a positive integer")


def test_from_config_coerces_and_validates():
    ex = from_config(Example, {"size": 3, "rate": 1, "decays": [0.5, 0.99]}, "group")
    assert ex == Example(3, 1.0, (0.5, 0.99), None)
    assert isinstance(ex.rate, float)


@pytest.mark.parametrize("node, message", [
    ({"size": "abc"}, "group.size='abc' has the wrong type: expected int"),
    ({"size": True}, "group.size=True has the wrong type"),
    ({"size": 0}, "group.size=0 is invalid: it must be a positive integer"),
    ({"sise": 1}, "Unknown key group.sise. Valid keys: decays, path, rate, size"),
    ({"decays": [0.9, "x"]}, "group.decays[1]='x' has the wrong type: expected float"),
    ({"path": 3}, "group.path=3 has the wrong type: expected str or null"),
])
def test_from_config_errors_name_path_value_and_valid(node, message):
    with pytest.raises(ConfigError) as err:
        from_config(Example, node, "group")
    assert message in str(err.value)


def test_registry_unknown_name_lists_choices():
    reg = Registry("widget", {"a": Example})
    assert reg.build({"name": "a", "size": 2}, "w") == Example(size=2)
    with pytest.raises(ConfigError, match=r"Unknown widget \(w.name\) 'b'. Valid choices: a."):
        reg.build({"name": "b"}, "w")


@pytest.mark.parametrize("value", [None, True, 3, 1e-3, [1, 2], {"a": [0.5, "x"]}, "synthetic", "/tmp/a-b.c",
                                   "pretrained:celo", "true", "1e-3", "null", "/tmp/a b", "a=b", "it's"])
def test_an_override_value_reads_back_as_the_value(value):
    """What hints and the theta rewrite print: Hydra parses it back to `value`; a string bare only
    where a shell keeps it whole and Hydra would not read it as another type."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    text = override_value(value)
    assert OverridesParser.create().parse_override(f"k={text}").value() == value
    if isinstance(value, str):
        assert (text == value) == (value in ("synthetic", "/tmp/a-b.c", "pretrained:celo"))
