"""Robust combine by hand, exact rollback of rows and momentum, and the gate."""

import pytest
import torch

from blockzero.delta.outer import OuterConfig
from blockzero.model.group_rows import read_group_rows
from blockzero.model.loading import build_model
from blockzero.validator.merge import Accepted, combine, gate, momentum_key, rollback, step_group
from blockzero.validator.proof_of_loss import EvalSet
from blockzero.validator.scoring import ResidentScorer


def test_combine_clips_to_median_and_weights_by_score():
    a = Accepted("a", score=1.0, norm=1.0, delta={"w": torch.tensor([1.0])})
    b = Accepted("b", score=3.0, norm=3.0, delta={"w": torch.tensor([3.0])})
    # median norm 2: a keeps its norm (1/4 of the weight), b is clipped to 2/3 (3/4 of it)
    assert combine([a, b])["w"].item() == pytest.approx(0.25 * 1.0 + 0.75 * (2 / 3) * 3.0)
    with pytest.raises(ValueError):
        combine([])


@pytest.fixture
def scorer(tiny_config):
    return ResidentScorer(build_model(tiny_config, seed=3), batch_size=8, device="cpu")


def test_step_then_rollback_restores_rows_and_momentum_exactly(scorer, registry):
    group = registry.group(1)
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    rows = read_group_rows(scorer.adapter, group)
    merged = {k: torch.randn_like(v) * 1e-3 for k, v in rows.items()}
    momentum = {"group-9/x": torch.ones(2)}
    cfg = OuterConfig()
    first = step_group(scorer, group, merged, momentum, cfg)
    assert set(momentum) == {"group-9/x", *(momentum_key(1, k) for k in rows)}
    kept = {k: v.clone() for k, v in momentum.items()}
    second = step_group(scorer, group, merged, momentum, cfg)
    rollback(scorer, second, momentum)
    assert all(torch.equal(momentum[k], v) for k, v in kept.items())
    rollback(scorer, first, momentum)
    assert set(momentum) == {"group-9/x"}
    assert all(torch.equal(v, before[k]) for k, v in scorer.model.state_dict().items())


def test_gate_rolls_back_a_step_that_raises_its_domain_loss(scorer, registry):
    group = registry.group(0)
    seqs = torch.randint(4, 260, (8, 32), generator=torch.Generator().manual_seed(0))
    eval_sets = {0: EvalSet(0, "code", list(range(8)), [], seqs, seqs[:0])}
    base = {0: scorer.losses(seqs)}
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    harmful = {k: torch.randn_like(v) for k, v in read_group_rows(scorer.adapter, group).items()}
    momentum: dict = {}
    undo = {0: step_group(scorer, group, harmful, momentum, OuterConfig())}
    outcome = gate(scorer, undo, eval_sets, base, momentum, tolerance=0.01)
    assert outcome[0].startswith("rolled back")  # the Nesterov step, then the plain delta
    assert momentum == {}
    assert all(torch.equal(v, before[k]) for k, v in scorer.model.state_dict().items())


def test_gate_keeps_a_step_that_helps(scorer, registry):
    group = registry.group(0)
    seqs = torch.randint(4, 260, (8, 32), generator=torch.Generator().manual_seed(0))
    eval_sets = {0: EvalSet(0, "code", list(range(8)), [], seqs, seqs[:0])}
    base = {0: scorer.losses(seqs)}
    # A delta that helps: one SGD step of the group's rows on the evaluation sequences themselves.
    for p in scorer.model.parameters():
        p.requires_grad_(False)
    for layer in scorer.adapter.layers:
        layer.experts.gate_up_proj.requires_grad_(True)
        layer.experts.down_proj.requires_grad_(True)
    loss = scorer.model(input_ids=seqs, labels=seqs).loss
    loss.backward()
    grads = {}
    for layer in scorer.adapter.layers:
        ids = torch.tensor(group.experts[layer.index])
        for t in ("gate_up_proj", "down_proj"):
            grads[layer.expert_tensor_name(t)] = getattr(layer.experts, t).grad[ids].clone() * 0.5
    undo = {
        0: step_group(scorer, group, grads, {}, OuterConfig(lr=1.0, momentum=0.0, nesterov=False))
    }
    outcome = gate(scorer, undo, eval_sets, base, {}, tolerance=0.01)
    assert outcome[0].startswith("kept"), outcome


def test_gate_does_not_retry_a_plain_averaging_step(scorer, registry, monkeypatch):
    group = registry.group(0)
    seqs = torch.randint(4, 260, (8, 32), generator=torch.Generator().manual_seed(0))
    eval_sets = {0: EvalSet(0, "code", list(range(8)), [], seqs, seqs[:0])}
    base = {0: scorer.losses(seqs)}
    harmful = {k: torch.randn_like(v) for k, v in read_group_rows(scorer.adapter, group).items()}
    plain = OuterConfig(lr=1.0, momentum=0.0, nesterov=False)
    undo = {0: step_group(scorer, group, harmful, {}, plain)}
    calls = []
    real = scorer.losses
    monkeypatch.setattr(scorer, "losses", lambda s: calls.append(1) or real(s))
    outcome = gate(scorer, undo, eval_sets, base, {}, tolerance=0.01)
    # The plain step is the merged delta itself: one evaluation, no second try of the same rows.
    assert outcome[0].startswith("rolled back") and len(calls) == 1
