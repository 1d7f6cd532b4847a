"""Shared test helpers: tiny configs composed from the shipped config tree."""
import json
import os
import tempfile

os.environ.setdefault("WANDB_MODE", "disabled")
# Tests run tiny workloads whose time is nearly all XLA compilation: LLVM at -O0 compiles the
# meta-training steps in about 60% of the time, and XLA:CPU's classic (non-MLIR) fusion emitters
# in about half of that again (here and in the CLI subprocesses, which inherit the flags).
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()
import lopt_cli  # noqa: E402,F401  (sets the XLA flags every test process needs, before jax)

# One XLA compilation cache for the session, outside the user's home, shared by the xdist workers
# and the CLI subprocesses they start: tests that compile the same step (the tiny default config)
# compile it once.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_CACHE = (os.path.join(tempfile.gettempdir(), f"lopt-xla-cache-{_RUN}") if _RUN
          else tempfile.mkdtemp(prefix="lopt-xla-cache-"))
os.makedirs(_CACHE, exist_ok=True)
os.environ["LOPT_COMPILATION_CACHE"] = _CACHE
lopt_cli.enable_compilation_cache()

import pytest  # noqa: E402  (after the environment above is set)

from lopt import config  # noqa: E402

TINY = ["data.source=synthetic", "data.synthetic_examples=64", "tracking.mode=disabled",
        "num_tasks=2", "estimator.trunc_length=3", "schedule.length=7", "outer_iterations=3",
        "log_every=1", "checkpoint_every=2"]
# learnable_adam (4 meta-parameters) compiles in about a quarter of small_fc_lopt's time (and its
# second derivatives in seconds): tests about anything but a learned optimizer's architecture use it.
CHEAP = [*TINY, "lopt=learnable_adam"]


def compose(config_name: str, *overrides: str):
    return config.compose(config_name, overrides)


def compose_meta_train(*overrides: str):
    return compose("meta_train", *overrides)


def records(path) -> list[dict]:
    """The records of a metrics.jsonl file without their wall-clock keys (`perf/`, `time/`): what
    two runs of the same config write alike."""
    return [{k: v for k, v in json.loads(line).items() if not k.startswith(("perf/", "time/"))}
            for line in path.read_text().splitlines()]


@pytest.fixture
def tiny_cfg():
    return compose_meta_train(*TINY)
