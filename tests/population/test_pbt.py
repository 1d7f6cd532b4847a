"""The exploit/explore step of population self-training, against hand-worked examples."""
import jax
import numpy as np
import pytest

from lopt.population import pbt

LENGTHS = (20, 30, 40, 80)
# Member i is trained by member outer[i]: 0 <- 1, 1 <- 2, 2 <- 0, 3 <- 1.
A = pbt.Assignments(outer=(1, 2, 0, 1), trunc_length=(20, 30, 40, 80))


def draws(pair=(0, 3), reassign=0.9, other=0.0, resample=0.9, length=0.0) -> pbt.Draws:
    return pbt.Draws(pair, reassign, other, resample, length)


def test_the_loser_copies_the_winners_outer_optimizer_and_keeps_its_length():
    """Members 0 and 3 compared; 3 scores lower (better): 0 copies 3's theta and outer optimizer
    (member 1); neither branch fires (0.9 >= 0.5 and 0.9 >= 0.1)."""
    new, event = pbt.exploit_explore(A, [2.0, 1.0], draws(), LENGTHS)
    assert event == pbt.Exploit(winner=3, loser=0, outer=1, trunc_length=20, reassigned=False, resampled=False)
    assert new == pbt.Assignments(outer=(1, 2, 0, 1), trunc_length=(20, 30, 40, 80))
    new, event = pbt.exploit_explore(A, [2.0, 1.0], draws(pair=(1, 2)), LENGTHS)  # 2 wins: 1 copies 2's outer, 0
    assert (event.winner, event.loser, event.outer) == (2, 1, 0) and new.outer == (1, 0, 0, 1)


def test_higher_is_better():
    _, event = pbt.exploit_explore(A, [2.0, 1.0], draws(), LENGTHS, higher_is_better=True)
    assert (event.winner, event.loser) == (0, 3)


@pytest.mark.parametrize("pair", [(0, 3), (3, 0)])
@pytest.mark.parametrize("higher_is_better", [False, True])
def test_ties_and_non_finite_scores_follow_the_rule_whatever_the_draw_order(pair, higher_is_better):
    """An exact tie, or two non-finite scores, keeps the lower member index (0), in either draw
    order; a non-finite score loses to any finite one, even one that is worse than any other."""
    nan, inf = float("nan"), float("inf")
    worst = -1e30 if higher_is_better else 1e30
    for scores, winner in [((1.0, 1.0), 0), ((nan, nan), 0), ((inf, nan), 0), ((-inf, inf), 0),
                           ((nan, worst), 3), ((worst, inf), 0), ((-inf, worst), 3)]:
        ordered = scores if pair == (0, 3) else scores[::-1]  # scores[k] is member (0, 3)[k]'s
        _, event = pbt.exploit_explore(A, ordered, draws(pair=pair), LENGTHS, higher_is_better=higher_is_better)
        assert (event.winner, event.loser) == (winner, 3 - winner), scores


def test_the_best_member_follows_the_same_rule():
    nan = float("nan")
    assert pbt.best([3.0, 1.0, 1.0, 2.0]) == 1  # a tie: the lower index
    assert pbt.best([3.0, 1.0, 1.0, 2.0], higher_is_better=True) == 0
    assert pbt.best([nan, nan, 5.0]) == 2 and pbt.best([nan, nan]) == 0


def test_the_half_chance_branch_redraws_the_outer_optimizer_among_the_others():
    """reassign 0.3 < 0.5: the loser (0) draws among members 1, 2, 3 by `other`: 0.0 -> 1,
    0.5 -> 2, 0.99 -> 3; never itself."""
    for other, expected in [(0.0, 1), (0.5, 2), (0.99, 3)]:
        new, event = pbt.exploit_explore(A, [2.0, 1.0], draws(reassign=0.3, other=other), LENGTHS)
        assert event.reassigned and event.outer == expected and new.outer[0] == expected
    _, event = pbt.exploit_explore(A, [2.0, 1.0], draws(reassign=0.5), LENGTHS)  # 0.5 is not below 0.5
    assert not event.reassigned


def test_the_tenth_chance_branch_resamples_the_losers_truncation_length():
    """resample 0.05 < 0.1: the loser's length is LENGTHS[int(length * 4)]; 0.1 is not below 0.1."""
    for u, expected in [(0.0, 20), (0.3, 30), (0.6, 40), (0.99, 80)]:
        new, event = pbt.exploit_explore(A, [2.0, 1.0], draws(resample=0.05, length=u), LENGTHS)
        assert event.resampled and event.trunc_length == expected and new.trunc_length[0] == expected
        assert new.trunc_length[1:] == A.trunc_length[1:]
    _, event = pbt.exploit_explore(A, [2.0, 1.0], draws(resample=0.1), LENGTHS)
    assert not event.resampled and event.trunc_length == 20


def test_a_copied_assignment_that_points_at_the_loser_is_always_redrawn():
    """Member 2 (trained by 0) beats member 0: copying would make 0 train itself, so 0 draws again
    among 1, 2, 3 even though reassign (0.9) says no."""
    new, event = pbt.exploit_explore(A, [1.0, 2.0], draws(pair=(2, 0), other=0.5), LENGTHS)
    assert (event.winner, event.loser, event.reassigned, event.outer) == (2, 0, True, 2)
    assert all(o != i for i, o in enumerate(new.outer))


def test_initial_assignments_and_draws_follow_the_key():
    a = pbt.initial(jax.random.PRNGKey(0), 10, LENGTHS)
    assert all(o != i and 0 <= o < 10 for i, o in enumerate(a.outer))
    assert set(a.trunc_length) <= set(LENGTHS)
    assert a == pbt.initial(jax.random.PRNGKey(0), 10, LENGTHS) != pbt.initial(jax.random.PRNGKey(1), 10, LENGTHS)
    d = pbt.draws(jax.random.PRNGKey(3), 10)
    assert d.pair[0] != d.pair[1] and d == pbt.draws(jax.random.PRNGKey(3), 10)
    assert pbt.initial(jax.random.PRNGKey(0), 1, LENGTHS).outer == (0,)  # alone: it trains itself
    assert pbt.draws(jax.random.PRNGKey(0), 1).pair == (0, 0)


def test_over_many_keys_each_branch_fires_at_its_rate():
    events = [pbt.exploit_explore(A, [2.0, 1.0], pbt.draws(k, 4), LENGTHS)[1]
              for k in jax.random.split(jax.random.PRNGKey(0), 2000)]
    assert np.mean([e.resampled for e in events]) == pytest.approx(0.1, abs=0.03)
    forced = [e for e in events if A.outer[e.winner] == e.loser]
    chosen = [e for e in events if A.outer[e.winner] != e.loser]
    assert all(e.reassigned for e in forced)
    assert np.mean([e.reassigned for e in chosen]) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("args, message", [
    ((0, LENGTHS, 0.5, 0.1), "size=0 is invalid"),
    ((4, (), 0.5, 0.1), r"trunc_lengths=\[\] is invalid: it must be a non-empty list of positive integers"),
    ((4, (20, 0), 0.5, 0.1), r"trunc_lengths=\[20, 0\] is invalid"),
    ((4, LENGTHS, 1.5, 0.1), "p_reassign=1.5 is invalid: it must be a probability in"),
])
def test_bad_settings_are_refused_naming_the_value(args, message):
    with pytest.raises(ValueError, match=message):
        pbt.check_settings(*args)
