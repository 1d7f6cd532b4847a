import jax
import numpy as np

from lopt.commands import meta_train
from lopt.platform import compile_options
from tests.conftest import CHEAP, compose_meta_train


def test_one_shot_programs_compile_at_llvm_level_0_on_cpu():
    assert jax.default_backend() == "cpu"
    assert compile_options.one_shot() == {"xla_backend_optimization_level": 0}


def test_the_compiled_initial_state_equals_the_op_by_op_one():
    trainer = meta_train.build(compose_meta_train(*CHEAP, "random_initial_offset=true")).trainer
    key = jax.random.PRNGKey(3)
    with jax.disable_jit():
        eager = trainer.init(key)
    compiled = trainer.init(key)
    assert jax.tree_util.tree_structure(eager) == jax.tree_util.tree_structure(compiled)
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(compiled)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    other = trainer.init(jax.random.PRNGKey(4))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(compiled),
                                                         jax.tree_util.tree_leaves(other)))
    assert trainer._compiled_init._cache_size() == 1  # one program for every call
