"""Parametric task families (family=): Hydra composition, sampling, validation, activations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lopt import tasks
from lopt.errors import ConfigError
from lopt.evaluation import periodic
from lopt.tasks import family
from lopt.tasks.analytic import QuadraticConfig
from lopt.tasks.classification import ClassificationConfig
from tests.conftest import compose_meta_train


def compose_family(value: str, *overrides: str):
    """meta_train composed with `family=<value>`."""
    return compose_meta_train(f"family={value}", *overrides)


def test_no_family_means_no_variants():
    assert family.variants(None) == [] and family.variants({}) == []
    assert family.variants(compose_meta_train().get("family")) == []


def test_two_families_compose_and_sample_their_variants():
    cfg = compose_family("[mlp_family,quadratic_family]", "family.quadratic_family.num_variants=3")
    assert list(cfg.family) == ["mlp_family", "quadratic_family"]
    configs = [v.config for v in family.variants(cfg.family)]
    assert [c.name for c in configs] == [f"mlp_family_{i}" for i in range(4)] + [f"quadratic_family_{i}" for i in range(3)]
    assert all(isinstance(c, ClassificationConfig) for c in configs[:4])
    assert all(isinstance(c, QuadraticConfig) for c in configs[4:])
    assert configs == [v.config for v in family.variants(cfg.family)]  # the seed fixes the sample
    one = [v.config for v in family.variants(
        compose_family("quadratic_family", "family.quadratic_family.num_variants=3").family)]
    assert one == configs[4:]  # a family's variants do not depend on the other families
    reseeded = [v.config for v in family.variants(compose_family("quadratic_family", "family.quadratic_family.seed=1").family)]
    assert {c.problem_seed for c in reseeded}.isdisjoint(c.problem_seed for c in configs[4:])


def test_mlp_variants_cover_the_space_and_stay_in_it():
    node = {**compose_family("mlp_family").family.mlp_family, "num_variants": 64}
    configs = [v.config for v in family.sample(family.parse(node, "family.mlp_family"), "mlp_family")]
    assert {c.activation for c in configs} == {"relu", "tanh", "gelu", "swish"}
    assert {len(c.hidden) for c in configs} == {1, 2, 3}
    assert {w for c in configs for w in c.hidden} == {16, 32, 64, 128}
    assert {c.batch_size for c in configs} == {32, 64, 128}
    assert {(c.dataset, c.image_size, c.model) for c in configs} == {("digits", 8, "mlp")}
    # every variant builds and runs: logits over the 10 digit classes
    task = configs[0].build()
    assert task.loss(task.init(jax.random.PRNGKey(0)), (jnp.zeros((2, 8, 8, 1)), jnp.arange(2))) > 0


def test_quadratic_variants_draw_from_their_ranges():
    node = {**compose_family("quadratic_family").family.quadratic_family, "num_variants": 32,
            "dim": [3, 5], "noise_std": [0.2, 0.4]}
    configs = [v.config for v in family.sample(family.parse(node, "family.quadratic_family"), "q")]
    assert {c.dim for c in configs} == {3, 4, 5}
    assert all(1e-3 <= c.min_curvature <= 0.1 and 1.0 <= c.max_curvature <= 100.0 for c in configs)
    assert all(0.2 <= c.noise_std <= 0.4 for c in configs) and len({c.problem_seed for c in configs}) == 32
    task = configs[0].build()
    assert task.init(jax.random.PRNGKey(0)).shape == (configs[0].dim,)


@pytest.mark.parametrize("option, key, value, message", [
    ("mlp_family", "kind", "cnn", "Unknown family kind (family.mlp_family.kind) 'cnn'. Valid choices: mlp, offline, "
                                     "quadratic."),
    ("mlp_family", "depth", [3, 1], "family.mlp_family.depth=[3, 1] is invalid: it must be a range [low, high] "
                                    "of integers with 1 <= low <= high."),
    ("mlp_family", "datasets", ["digits", "mnist"], "family.mlp_family.datasets=['digits', 'mnist'] is invalid: "
                                                    "it must be a non-empty list of datasets from"),
    ("mlp_family", "activations", ["relu", "elu"], "activations from ['relu', 'tanh', 'gelu', 'swish']"),
    ("mlp_family", "num_variants", 0, "family.mlp_family.num_variants=0 is invalid"),
    ("quadratic_family", "min_curvature", [0.1, 2.0], "family.quadratic_family.min_curvature=[0.1, 2.0] is "
                                                      "invalid: it must be a range that ends at or below"),
    ("quadratic_family", "noise_std", [-1.0, 1.0], "family.quadratic_family.noise_std=[-1.0, 1.0] is invalid"),
    ("offline_family", "models", ["mlp"], "family.offline_family.models=['mlp'] is invalid: it must be a list with "
                                          "a model kind for every dataset (sample_patches trains one of ['autoencoder'])"),
    ("offline_family", "datasets", ["cifar10"], "family.offline_family.datasets=['cifar10'] is invalid: it must be a "
                                                "non-empty list of offline datasets from"),
    ("offline_family", "horizon", [0, 10], "family.offline_family.horizon=[0, 10] is invalid"),
])
def test_bad_family_values_are_named(option, key, value, message):
    node = {**compose_family(option).family[option], key: value}
    with pytest.raises(ConfigError) as err:
        family.variants({option: node})
    assert message in str(err.value)


def test_activation_is_the_hidden_nonlinearity_and_relu_is_the_default():
    base = compose_meta_train("task.hidden=[5]").task
    params = tasks.build(base).init(jax.random.PRNGKey(0))
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 8, 8, 1))
    y = jnp.arange(3)
    w0, b0 = np.asarray(params["Dense_0"]["kernel"]), np.asarray(params["Dense_0"]["bias"])
    w1, b1 = np.asarray(params["Dense_1"]["kernel"]), np.asarray(params["Dense_1"]["bias"])
    for name, fn in [("relu", lambda h: np.maximum(h, 0)), ("tanh", np.tanh)]:
        task = tasks.build({**base, "activation": name})
        logits = fn(np.asarray(x).reshape(3, -1) @ w0 + b0) @ w1 + b1
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        expected = -logp[np.arange(3), np.arange(3)].mean()
        assert float(task.loss(params, (x, y))) == pytest.approx(expected, rel=1e-5)
    assert float(tasks.build(base).loss(params, (x, y))) == float(tasks.build({**base, "activation": "relu"}).loss(params, (x, y)))
    with pytest.raises(ConfigError, match="task.activation='elu' is invalid"):
        tasks.parse({**base, "activation": "elu"})


def test_load_data_loads_each_dataset_once():
    configs = [v.config for v in family.variants(compose_family("[mlp_family,quadratic_family]").family)]
    calls = []
    datas = family.load_data(configs, lambda c: calls.append(c.name) or object())
    assert calls == ["mlp_family_0", "quadratic_family_0"]
    assert all(d is datas[0] for d in datas[:4]) and datas[4] is not datas[0]


def _offline(**overrides):
    node = {**compose_family("offline_family").family.offline_family, **overrides}
    return family.sample(family.parse(node, "family.offline_family"), "offline_family", periodic.suite_task_configs)


@pytest.fixture(scope="module")
def offline_variants():
    return _offline(num_variants=48)


def test_offline_variants_cover_every_dataset_and_model_within_their_bounds(offline_variants):
    variants = offline_variants
    configs = [v.config for v in variants]
    assert {c.dataset for c in configs} == set(family.FITS)
    kinds = {(c.dataset, getattr(c, "model", type(c).__name__)) for c in configs}
    assert {("mnist1d", "mlp"), ("mnist1d", "conv1d"), ("sample_patches", "AutoencoderConfig"),
            ("python_stdlib", "LanguageModelConfig"), ("digits", "mlp")} <= kinds
    assert all(family._cost(c) <= 1e7 for c in configs)
    assert all(0.5 <= c.init_scale <= 2.0 for c in configs) and all(50 <= v.horizon <= 3000 for v in variants)
    assert min(v.horizon for v in variants) < 150 and max(v.horizon for v in variants) > 1000  # log-uniform spread
    heldout = {family._architecture(c) for c in periodic.suite_task_configs("offline_heldout")}
    assert not heldout & {family._architecture(c) for c in configs}
    assert variants == _offline(num_variants=48)  # the seed fixes the sample
    for c in configs[:8]:  # every kind builds with its data's shapes: the loss is finite at init
        task = c.build()
        params = task.init(jax.random.PRNGKey(0))
        assert family._cost(c) > 0 and np.isfinite(float(sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(params))))


def test_offline_family_never_samples_an_excluded_architecture():
    # wine_mlp_deep of offline_heldout is the only architecture these bounds allow
    only = {"datasets": ["wine"], "models": ["mlp"], "depth": [3, 3], "widths": [32], "activations": ["tanh"],
            "batch_sizes": [16], "num_variants": 1}
    with pytest.raises(ConfigError, match="no mlp on wine of 1000 draws .* outside suite offline_heldout"):
        _offline(**only)
    (variant,) = _offline(**only, exclude_suite=None)
    assert variant.config.hidden == (32, 32, 32) and variant.config.activation == "tanh"


def test_init_scale_multiplies_every_initial_weight():
    base = compose_meta_train().task
    key = jax.random.PRNGKey(3)
    one, two = (tasks.build({**base, "init_scale": s}).init(key) for s in (1.0, 2.0))
    for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(two)):
        np.testing.assert_allclose(np.asarray(b), 2.0 * np.asarray(a), rtol=1e-6)
