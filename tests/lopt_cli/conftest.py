"""Fixtures of the CLI tests."""
import sys

import pytest

from lopt import config
from lopt_cli.main import main


@pytest.fixture
def lopt_here(tmp_path, monkeypatch):
    """`lopt *args` in this process, from `tmp_path`: its exit status. Hydra's logging setup is left
    out: it would close the streams pytest captures (dictConfig shuts down every handler, absl's with
    it); the tests that run `lopt` in a subprocess cover it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lopt"])  # main() sets it for Hydra
    monkeypatch.setattr(config, "_user_search_path", None)  # main() sets the user's config directories
    return lambda *args: main([*args, "hydra/job_logging=none", "hydra/hydra_logging=none"])
