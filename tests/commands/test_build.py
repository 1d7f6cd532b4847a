"""`lopt.commands.build`: a command's components from overrides, as the CLI composes them."""
import jax
import numpy as np
import pytest

from lopt import commands, pretrained
from lopt.errors import ConfigError, UserError
from tests.conftest import CHEAP


def test_meta_train_components_step_on_their_own_data():
    c = commands.build("meta-train", CHEAP)
    assert c.settings.num_tasks == 2 and type(c.lopt).__name__ == "LearnableAdam"
    state = c.trainer.init(jax.random.PRNGKey(0))
    new, out = jax.jit(c.trainer.step)(state, c.load_data())
    assert np.isfinite(out.meta_loss) and int(new.iteration) == int(state.iteration) + 1


def test_evaluate_components_carry_the_evaluated_optimizer():
    name = pretrained.names()[0]
    e = commands.build("evaluate", ["task=digits_mlp", f"theta=pretrained:{name}", "tracking.mode=disabled"])
    assert e.evaluated.learned and e.evaluated.checkpoint == pretrained.ROOT / name / "final_theta"
    assert e.evaluated.label.endswith("(meta-trained)")
    h = commands.build("evaluate", ["optimizer.lr=0.01"])
    assert not h.evaluated.learned and h.evaluated.label == "adam lr=0.01"


@pytest.mark.parametrize("command, overrides, message", [
    ("nope", [], "Unknown command 'nope'. Valid choices: baseline-sweep, evaluate, export, meta-train."),
    ("evaluate", ["task=nope"], "`lopt evaluate task=nope` does not compose: In 'evaluate': Could not find 'task/nope'"),
    ("evaluate", ["num_steps=7"], "num_steps=7 is invalid"),
])
def test_bad_input_is_the_clis_config_error(command, overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        commands.build(command, overrides)


def test_theta_alone_selects_the_architecture_of_its_run_as_on_the_command_line():
    """`meta-train theta=<run>` without `lopt=` warm-starts the run's architecture (celo with its
    options here), not the default small_fc_lopt, from the library as from the CLI."""
    theta = f"theta=pretrained:{pretrained.names()[0]}"
    c = commands.build("meta-train", [theta, "tracking.mode=disabled"])
    assert type(c.lopt).__name__ == "Celo" and c.lopt.fraction_features
    with pytest.raises(UserError, match="drop lopt= "):  # a given architecture is kept, and contradicts the run
        commands.build("meta-train", [theta, "lopt=celo"])
