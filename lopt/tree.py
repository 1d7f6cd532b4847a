"""Pytree helpers used across the unroll, the estimators and the outer step."""
from typing import Any

import jax
import jax.numpy as jnp


def along_rows(values: jax.Array, x: jax.Array) -> jax.Array:
    """`values` ([rows] or a scalar) shaped to broadcast against `x` ([rows, ...] or any shape)."""
    return jnp.reshape(values, jnp.shape(values) + (1,) * (jnp.ndim(x) - jnp.ndim(values)))


def where_rows(cond: jax.Array, a: Any, b: Any) -> Any:
    """Per leaf: `a` where `cond` holds, else `b`. `cond` is a scalar (the whole tree) or [rows]
    (one flag per row of leaves with a leading row axis, e.g. inner problems or tasks)."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(along_rows(cond, x), x, y), a, b)


def all_finite(tree: Any) -> jax.Array:
    """Whether every value of every leaf of `tree` is finite (True for a tree without leaves)."""
    return jnp.all(jnp.stack([jnp.asarray(True), *(jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree))]))
