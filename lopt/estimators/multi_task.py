"""Meta-gradients over several task variants at once (a task family, lopt.tasks.family).

`MultiTask` wraps any estimator and runs it over a tuple of unrolls, one per variant, each with its
own data and estimator state, inside the same compiled call: variants have different parameter
shapes, so each is its own vectorized unroll (a Python loop over variants, unrolled at trace time;
every variant compiles once, in one program). The meta-gradient is the mean of the variants'
estimates, each variant weighted equally whatever its loss scale or size.
"""
from dataclasses import dataclass
from typing import Any, Sequence

import jax

from lopt.data import Dataset
from lopt.unroll import TruncatedUnroll

tree_map = jax.tree_util.tree_map

COUNT_PREFIXES = ("inner/resets", "outer/nonfinite", "inner/nonfinite")  # summed over variants, not averaged


def combine_metrics(names: Sequence[str], metrics: Sequence[dict]) -> dict:
    """Per-variant metrics -> one record: counts (COUNT_PREFIXES) summed, everything else averaged
    over variants, plus each variant's outer loss as `family/<name>/loss`."""
    out = {}
    for key in metrics[0]:
        values = [m[key] for m in metrics]
        out[key] = sum(values) if key.startswith(COUNT_PREFIXES) else sum(values) / len(values)
    out.update({f"family/{name}/loss": m["outer/loss"] for name, m in zip(names, metrics)})
    return out


@dataclass(frozen=True)
class MultiTask:
    """`estimator` over the variants `names` (one unroll, dataset and state per variant, in this
    order). It has the estimator interface with tuples in place of the unroll, data and state; each
    variant runs `num_tasks` inner problems. Other attributes (trunc_length, check_schedule, ...)
    are the wrapped estimator's."""

    estimator: Any
    names: tuple[str, ...]

    def __getattr__(self, name: str) -> Any:
        if name == "estimator":  # not yet set (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def init(self, unrolls: Sequence[TruncatedUnroll], theta: Any, key: jax.Array, num_tasks: int,
             random_offset: bool = True) -> tuple:
        """One estimator state per variant, each from its own key."""
        keys = jax.random.split(key, len(unrolls))
        return tuple(self.estimator.init(u, theta, k, num_tasks, random_offset) for u, k in zip(unrolls, keys))

    def estimate(self, unrolls: Sequence[TruncatedUnroll], theta: Any, states: Sequence[Any],
                 datas: Sequence[Dataset | None], key: jax.Array, outer_iteration: jax.Array
                 ) -> tuple[Any, tuple, dict]:
        """The variants' estimates (variant i with key i of `split(key, variants)`), their mean, the
        advanced states and the combined metrics."""
        keys = jax.random.split(key, len(unrolls))
        results = [self.estimator.estimate(u, theta, s, d, k, outer_iteration)
                   for u, s, d, k in zip(unrolls, states, datas, keys)]
        grads, new_states, metrics = zip(*results)
        grad = tree_map(lambda *g: sum(g) / len(g), *grads)
        return grad, tuple(new_states), combine_metrics(self.names, metrics)

    def inner_steps(self, num_tasks: int, *args: Any) -> int:
        """Inner steps of one outer iteration over all variants (`args` as the wrapped estimator's)."""
        return len(self.names) * self.estimator.inner_steps(num_tasks, *args)
