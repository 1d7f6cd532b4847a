"""Learned optimizer registry: the `lopt/` config group names an architecture built here.

Trained meta-parameters are named apart from the architecture (`theta=<meta-train run>` in
meta-train and evaluate, `outer_opt.theta` for a learned outer optimizer) and loaded at run time.
"""
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from lopt.config import Registry
from lopt.errors import UserError
from lopt.io import checkpoint, checksums, theta_files
from lopt.learned.celo import Celo
from lopt.learned.celo2 import Celo2
from lopt.learned.fc_lopt import FCLOpt
from lopt.learned.hypernet import Hypernet
from lopt.learned.learnable_adam import LearnableAdam
from lopt.learned.nn_adam import NNAdam
from lopt.learned.rnn_mlp_lopt import RNNMLPLOpt
from lopt.learned.small_fc_lopt import SmallFCLOpt

REGISTRY = Registry("learned optimizer", {
    "small_fc_lopt": SmallFCLOpt,
    "fc_lopt": FCLOpt,
    "learnable_adam": LearnableAdam,
    "nn_adam": NNAdam,
    "rnn_mlp_lopt": RNNMLPLOpt,
    "hypernet": Hypernet,
    "celo2": Celo2,
    "celo": Celo,
})

__all__ = ["REGISTRY", "Celo", "Celo2", "FCLOpt", "Hypernet", "LearnableAdam", "NNAdam", "RNNMLPLOpt", "SmallFCLOpt",
           "build", "check_architecture", "load_theta"]


def build(cfg: Mapping[str, Any], node: str = "lopt") -> Any:
    """The learned optimizer named by the `lopt`-style config node at path `node`."""
    return REGISTRY.build(cfg, node)


def _configured_name(lopt: Any) -> str:
    """The `lopt=` option that built `lopt` (its class name if it is not registered)."""
    return next((n for n in REGISTRY.names() if REGISTRY.get(n) is type(lopt)), type(lopt).__name__)


def load_theta(lopt: Any, path: Path, key: str = "theta") -> Any:
    """Meta-parameters saved at `path` (named by config key `key`), which must match the
    architecture of `lopt`; an exported folder's files (`lopt export`) are checked against its
    SHA-256s first."""
    checksums.verify(theta_files.run_of(path))
    try:
        return checkpoint.load_tree(path, lopt.init_theta(jax.random.PRNGKey(0)))
    except UserError as err:
        trained, configured = (theta_files.stored_architecture(path) or {}).get("name"), _configured_name(lopt)
        node = "lopt" if key == "theta" else f"{key.rsplit('.', 1)[0]}.lopt.name"
        run = theta_files.run_of(path)
        if trained is not None and trained != configured:
            raise UserError(f"{key}={str(run)!r} was meta-trained with lopt={trained} but this run configures "
                            f"{node}={configured}: set {node}={trained} (with the options in {run / 'config.yaml'}) "
                            f"or give a run of {configured}.") from None
        raise UserError(f"{key} does not fit the configured learned optimizer ({type(lopt).__name__}): {err}") from None


def _value(v: Any) -> str:
    return str(list(v)) if isinstance(v, tuple) else str(v)


def _differing_options(a: Any, b: Any) -> list[str]:
    """`key=value` of `a`'s options (dataclass fields) that differ from `b` (same class), or from
    its class's defaults (another class)."""
    if type(a) is not type(b):
        try:
            b = type(a)()
        except TypeError:  # no defaults: show every option
            return [f"{f.name}={_value(getattr(a, f.name))}" for f in dataclasses.fields(a)]
    return [f"{f.name}={_value(getattr(a, f.name))}" for f in dataclasses.fields(a)
            if getattr(a, f.name) != getattr(b, f.name)]


def _described(name: str, options: list[str]) -> str:
    return f"lopt={name}" + (f" ({', '.join(options)})" if options else "")


def check_architecture(lopt: Any, given: str | Path | None, key: str = "theta", warm_start: bool = False) -> None:
    """Refuse a configured learned optimizer `lopt` that differs from the architecture the run
    named by `given` (config key `key`) was meta-trained with, as its config.yaml records it
    (nothing to check without one: loading theta then checks the arrays). For a `warm_start`
    (meta-training from the run's theta) the options its class lists in `WARM_START_MAY_CHANGE`
    may differ (Celo's phase 2 starts from a phase-1 run)."""
    stored = theta_files.stored_architecture(given)
    if stored is None:
        return
    try:
        trained = build(stored)
    except UserError:  # a config.yaml this version cannot build: loading theta decides
        return
    if warm_start and type(trained) is type(lopt):
        changed = {f: getattr(lopt, f) for f in getattr(lopt, "WARM_START_MAY_CHANGE", ())}
        trained = dataclasses.replace(trained, **changed)
    if trained == lopt:
        return
    trained_name = str(stored["name"])
    configured_name = _configured_name(lopt)
    raise UserError(
        f"{key} does not fit the configured learned optimizer: {key}={str(given)!r} was meta-trained with "
        f"{_described(trained_name, _differing_options(trained, lopt))} but "
        f"{_described(configured_name, _differing_options(lopt, trained) if type(lopt) is type(trained) else [])} "
        f"is configured: drop lopt= (and lopt.* overrides) to use the run's architecture, or give a run of "
        f"{configured_name}.")
