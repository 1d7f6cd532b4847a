"""The package's floors (docs/layout.md): every import of a lopt module reaches its own floor or a
lower one, nothing in lopt imports the CLI, and no two parts of lopt import each other, directly or
round a circle. Read from the source (every import statement, also those inside functions)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a part is a top-level module or package of lopt
FLOORS = [
    {"errors", "config", "tree"},
    {"data", "base"},  # datasets as arrays, and the interfaces over them (base names data's Dataset type)
    {"platform", "pretrained", "io"},
    {"schedules", "tasks", "learned", "optimizers", "unroll", "estimators"},
    {"training", "meta_trainer"},
    {"evaluation", "population"},
    {"figures"},
    {"commands"},
]
FLOOR = {part: i for i, parts in enumerate(FLOORS) for part in parts}


def _part(module: str) -> str:
    return module.split(".")[1]


def imports() -> dict[str, set[str]]:
    """Each part of lopt: the other parts of lopt (and `lopt_cli`) its modules import."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "lopt").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        uses = found.setdefault(_part(module), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] if node.module != "lopt" else [f"lopt.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("lopt_cli"):
                    uses.add("lopt_cli")
                elif name.startswith("lopt.") and _part(name) != _part(module):
                    uses.add(_part(name))
    return found


def test_every_part_has_a_floor():
    parts = {p.stem for p in (ROOT / "lopt").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert parts == set(FLOOR)


def test_nothing_imports_upward_or_the_cli():
    upward = {(part, used) for part, uses in imports().items() for used in uses
              if used == "lopt_cli" or FLOOR[used] > FLOOR[part]}
    assert not upward


@pytest.mark.parametrize("part", sorted(FLOOR))
def test_no_part_reaches_itself_through_its_imports(part):
    graph = imports()
    seen, todo = set(), list(graph.get(part, ()))
    while todo:
        used = todo.pop()
        if used not in seen and used != "lopt_cli":
            seen.add(used)
            todo.extend(graph.get(used, ()))
    assert part not in seen
