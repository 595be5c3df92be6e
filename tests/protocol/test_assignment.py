from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockzero.protocol.assignment import MinerRule, NeuronInfo, assign_groups, select_miners

hotkey_lists = st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=40)
seeds = st.integers(0, 2**64 - 1)


@given(hotkey_lists, st.integers(1, 8), seeds)
def test_balanced(hotkeys: list[str], num_groups: int, seed: int) -> None:
    assignment = assign_groups(hotkeys, list(range(num_groups)), seed)
    assert set(assignment) == set(hotkeys)
    counts = Counter(assignment.values())
    sizes = [counts.get(g, 0) for g in range(num_groups)]
    assert max(sizes) - min(sizes) <= 1
    if len(hotkeys) >= num_groups:
        assert min(sizes) >= 1


@given(hotkey_lists, st.integers(1, 8), seeds, st.randoms(use_true_random=False))
def test_order_independent(hotkeys: list[str], num_groups: int, seed: int, rnd) -> None:
    groups = list(range(num_groups))
    shuffled_hotkeys, shuffled_groups = hotkeys[:], groups[:]
    rnd.shuffle(shuffled_hotkeys)
    rnd.shuffle(shuffled_groups)
    assert assign_groups(hotkeys, groups, seed) == assign_groups(
        shuffled_hotkeys, shuffled_groups, seed
    )


def test_pinned_and_seed_dependent() -> None:
    hotkeys = [f"5hk{i}" for i in range(6)]
    first = assign_groups(hotkeys, [0, 1, 2], seed=7)
    assert first == assign_groups(reversed(hotkeys), [2, 1, 0], seed=7)
    assert first == {"5hk0": 0, "5hk1": 1, "5hk2": 2, "5hk3": 1, "5hk4": 0, "5hk5": 2}
    assert any(assign_groups(hotkeys, [0, 1, 2], seed=s) != first for s in range(1, 5))


def test_fewer_miners_than_groups_spreads_over_seeded_groups() -> None:
    chosen = {assign_groups(["only"], list(range(8)), seed=s)["only"] for s in range(40)}
    assert len(chosen) > 1


@pytest.mark.parametrize(
    ("hotkeys", "groups", "seed"),
    [
        (["a", "a"], [0], 0),
        (["a"], [], 0),
        (["a"], [0, 0], 0),
        (["a"], [0], -1),
        (["a"], [0], 2**64),
    ],
)
def test_bad_inputs_are_refused(hotkeys: list[str], groups: list[int], seed: int) -> None:
    with pytest.raises(ValueError):
        assign_groups(hotkeys, groups, seed)


def test_select_miners_excludes_staked_validators_only() -> None:
    rule = MinerRule(validator_min_stake_alpha=1000)
    neurons = [
        NeuronInfo(uid=0, hotkey="val", validator_permit=True, stake_rao=1000 * 10**9),
        NeuronInfo(uid=1, hotkey="permit-low-stake", validator_permit=True, stake_rao=999 * 10**9),
        NeuronInfo(uid=2, hotkey="rich-no-permit", validator_permit=False, stake_rao=10**15),
        NeuronInfo(uid=3, hotkey="plain", validator_permit=False, stake_rao=0),
    ]
    assert select_miners(reversed(neurons), rule) == ["permit-low-stake", "plain", "rich-no-permit"]
