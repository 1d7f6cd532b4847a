"""The small MLPs inside learned optimizers: weights as plain dicts of arrays (theta is a pytree
that PES perturbs), and the per-parameter MLP evaluated over whole tensors."""
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from lopt.config import check
from lopt.learned.features import second_moment_scales


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> dict[str, jax.Array]:
    """{w0, b0, w1, b1, ...} for layer widths `sizes`: truncated-normal weights scaled by
    1/sqrt(fan_in), zero biases."""
    keys = jax.random.split(key, len(sizes) - 1)
    nn = {}
    for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        nn[f"w{i}"] = jax.random.truncated_normal(k, -2.0, 2.0, (fan_in, fan_out)) / jnp.sqrt(fan_in)
        nn[f"b{i}"] = jnp.zeros((fan_out,))
    return nn


def init_linear(key: jax.Array, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    """{w, b} of one dense layer, initialized as `init_mlp` initializes a layer (haiku's hk.Linear
    default: truncated normal with standard deviation 1/sqrt(fan_in), zero bias)."""
    nn = init_mlp(key, [fan_in, fan_out])
    return {"w": nn["w0"], "b": nn["b0"]}



def check_hidden(hidden_size: int, hidden_layers: int) -> None:
    """Hidden width must be positive; zero hidden layers is a linear read-out."""
    check(hidden_size > 0, "hidden_size", hidden_size, "a positive integer")
    check(hidden_layers >= 0, "hidden_layers", hidden_layers, "a non-negative integer")


Layers = tuple[tuple[jax.Array, jax.Array], ...]  # (weights [in, out], bias [out]) after the first layer


@jax.custom_vjp
def per_parameter_mlp(feats: tuple[jax.Array, ...], w0: jax.Array, bias: jax.Array, layers: Layers
                      ) -> tuple[jax.Array, ...]:
    """A ReLU MLP applied to every element of a tensor: `feats` are F same-shaped arrays (the
    inputs of each element), `w0` [F, H] and `bias` [H] the first layer; returns one array per
    output unit.

    Written as scalar-weighted sums of whole tensors rather than a [*, F] @ [F, H] matmul: with a
    few hidden units XLA fuses it into elementwise loops, 3x faster on CPU than stacking the
    features. Its derivative (backprop through the unroll: tbptt, merged) is the matmul form,
    which is a few dots instead of the transpose of every term (docs/performance.md)."""
    return _forward(feats, w0, bias, layers)[0]


def _forward(feats, w0, bias, layers) -> tuple[tuple[jax.Array, ...], list[list[jax.Array]]]:
    """The outputs and each layer's pre-activations (one array per unit)."""
    net = [sum(f * w0[i, j] for i, f in enumerate(feats)) + bias[j] for j in range(w0.shape[1])]
    pre = [net]
    for w, b in layers:
        hidden = [jax.nn.relu(h) for h in net]
        net = [sum(h * w[i, j] for i, h in enumerate(hidden)) + b[j] for j in range(w.shape[1])]
        pre.append(net)
    return tuple(net), pre[:-1]


def _mlp_fwd(feats, w0, bias, layers):
    out, pre = _forward(feats, w0, bias, layers)
    return out, (feats, w0, layers, [jnp.stack(z, axis=-1) for z in pre])


def _mlp_bwd(residuals, cotangents):
    feats, w0, layers, pre = residuals
    axes = tuple(range(feats[0].ndim))  # every element of the tensor
    dout = jnp.stack(cotangents, axis=-1)  # [*, units]
    grads = []
    for (w, _), z in zip(reversed(layers), reversed(pre)):  # layer k maps relu(pre[k - 1]) onwards
        hidden = jax.nn.relu(z)
        grads.append((jnp.tensordot(hidden, dout, (axes, axes)), jnp.sum(dout, axis=axes)))
        dout = (dout @ w.T) * (z > 0)
    x = jnp.stack(feats, axis=-1)  # [*, F]
    dfeats = dout @ w0.T
    return (tuple(dfeats[..., i] for i in range(len(feats))), jnp.tensordot(x, dout, (axes, axes)),
            jnp.sum(dout, axis=axes), tuple(reversed(grads)))


per_parameter_mlp.defvjp(_mlp_fwd, _mlp_bwd)


def normalized_mlp(nn: dict[str, jax.Array], bias: jax.Array, feats: list[jax.Array], hidden_layers: int,
                   eps: float = 1e-5, normalize: bool = True) -> tuple[jax.Array, ...]:
    """The per-parameter MLP `nn` ({w0, b0, w1, b1, ...}, `hidden_layers` hidden layers) on the F
    features `feats` of one tensor, each scaled to unit second moment over the tensor first (Metz et
    al. 2022, Practical tradeoffs between memory, compute, and performance in learned optimizers,
    arXiv:2203.11860, App. A). The scaling is folded into the first layer's weights (same numbers, no
    normalized copies), its mean squares taken in one pass over the tensor. `bias` is the first
    layer's input from everything constant over the tensor (b0, plus e.g. time features' share);
    only the first F rows of nn["w0"] are read. One output array per output unit. `eps` is the
    scaling's rsqrt(eps + mean square); `normalize=False` reads the features as they are."""
    w0 = nn["w0"][: len(feats)]
    if normalize:
        w0 = w0 * second_moment_scales(feats, eps)[:, None]
    layers = tuple((nn[f"w{i}"], nn[f"b{i}"]) for i in range(1, hidden_layers + 1))
    return per_parameter_mlp(tuple(feats), w0, bias, layers)
