"""MkDocs hook: `<!-- lopt-help: <command> -->` in a page becomes the output of `lopt <command> --help`,
run when the site is built, so the command pages cannot drift from the CLI."""
import re
import subprocess
import sys

MARKER = re.compile(r"<!-- lopt-help: ([\w-]+) -->")


def command_help(command: str) -> str:
    """What `lopt <command> --help` prints."""
    done = subprocess.run([sys.executable, "-m", "lopt_cli.main", command, "--help"], capture_output=True, text=True,
                          check=True)
    return done.stdout.rstrip()


def on_page_markdown(markdown: str, **_) -> str:
    return MARKER.sub(lambda m: f"```text\n{command_help(m.group(1))}\n```", markdown)
