"""The documentation: a page per command whose option list is `lopt <command> --help` (put in by the
site's build hook, so it cannot drift), and a README short enough to read, linking pages that exist."""
import importlib.util
import re
from pathlib import Path

from lopt.commands import COMMANDS
from tests import cli_process

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def _hook():
    spec = importlib.util.spec_from_file_location("command_help", DOCS / "hooks" / "command_help.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_page_shows_its_help_as_the_cli_prints_it():
    hook = _hook()
    for name in COMMANDS:
        page = (DOCS / "commands" / f"{name}.md").read_text()
        assert f"<!-- lopt-help: {name} -->" in page
    rendered = hook.on_page_markdown((DOCS / "commands" / "export.md").read_text())
    printed = cli_process.run("export", "--help").stdout.rstrip()
    assert f"```text\n{printed}\n```" in rendered and "<!-- lopt-help" not in rendered


def test_the_readme_is_short_and_links_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) > 10 and all((ROOT / link).is_file() for link in links)
    assert readme.count("```bash\npip install") == 2  # the two set-up commands
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == set(re.findall(r"([\w/-]+\.md)", nav))  # every page is in the site's navigation
