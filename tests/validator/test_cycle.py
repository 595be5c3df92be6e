"""The validator's cycle on the embedded chain and hub: honest miners pass and get weight, every
cheat scores zero with its reason, two validators agree, the held-out loss falls over cycles."""

import pickle

import torch
from safetensors.torch import save_file

from blockzero.delta.pseudo_gradient import global_norm
from blockzero.delta.submission import Rejection
from blockzero.model.evaluation import sequence_losses
from blockzero.protocol.cycle import Phase
from blockzero.roster import assignment
from blockzero.validator.evidence import Reason

CHEATS = {
    "zero": Reason.NOT_SIGNIFICANT,
    "noise": Reason.NOT_SIGNIFICANT,
    "sign_flip": Reason.NOT_SIGNIFICANT,
    "x100": Rejection.OVER_NORM,
    "nan": Rejection.NON_FINITE,
    "other_group": Reason.WRONG_GROUP,
    "extra_key": Rejection.EXTRA_KEY,
    "pickle": Rejection.MALFORMED,
    "oversize": Rejection.TOO_LARGE,
    "no_commitment": Reason.NO_COMMITMENT,
    "late": Reason.LATE,
    "stale_base": Reason.STALE_BASE,
    "hash_mismatch": Reason.HASH_MISMATCH,
}
PER_GROUP = ["honest1", "honest2", "copy", "copy_noise"]


def _roles(groups: dict[str, int], names: dict[str, str]) -> dict[str, str]:
    """Honest miners and their copiers inside each group; the other cheats anywhere."""
    roles: dict[str, str] = {}
    for g in (0, 1):
        members = sorted(names[h] for h, gg in groups.items() if gg == g and h in names)
        roles |= dict(zip(members, PER_GROUP, strict=False))
    rest = sorted(n for n in names.values() if n not in roles)
    roles |= dict(zip(rest, CHEATS, strict=False))
    assert sorted(roles.values()) == sorted([*PER_GROUP, *PER_GROUP, *CHEATS])
    return roles


def _file(net, name, role, delta, *, cycle, group, base):
    gen = torch.Generator().manual_seed(len(name))

    def write(d, **meta):
        return net.write(name, d, **({"cycle": cycle, "group": group, "base": base} | meta))

    if role in ("honest1", "honest2", "copy", "late", "no_commitment", "hash_mismatch"):
        return write(delta)
    if role == "copy_noise":
        noise = {k: torch.randn(v.shape, generator=gen) for k, v in delta.items()}
        scale = 0.01 * global_norm(delta) / global_norm(noise)
        return write({k: v + scale * noise[k] for k, v in delta.items()})
    if role == "zero":
        return write({k: torch.zeros_like(v) for k, v in delta.items()})
    if role == "noise":
        noise = {k: torch.randn(v.shape, generator=gen) for k, v in delta.items()}
        scale = global_norm(delta) / global_norm(noise)
        return write({k: v * scale for k, v in noise.items()})
    if role == "sign_flip":
        return write({k: -v for k, v in delta.items()})
    if role == "x100":
        return write({k: 100 * v for k, v in delta.items()})
    if role == "nan":
        bad = {k: v.clone() for k, v in delta.items()}
        next(iter(bad.values())).view(-1)[0] = float("nan")
        return write(bad)
    if role == "other_group":
        return write(delta, group=1 - group)
    if role == "extra_key":
        return write(delta | {"model.embed_tokens.weight": torch.zeros(260, 128)})
    if role == "stale_base":
        return write(delta, base_revision="f" * 40)
    path = net.tmp / "files" / name / f"cycle-{cycle}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    if role == "pickle":
        path.write_bytes(pickle.dumps({k: v.tolist()[:2] for k, v in delta.items()}))
    else:
        save_file(delta | {"padding": torch.zeros(3 << 20)}, str(path))
    return path


def _submit(net, roles, groups, deltas, *, cycle, base, names):
    hotkey = {n: h for h, n in names.items()}
    files = {}
    for name, role in sorted(roles.items()):
        g = groups[hotkey[name]]
        source = deltas[(g, 2 if role in ("honest2", "copy_noise") else 1)]
        files[name] = _file(net, name, role, source, cycle=cycle, group=g, base=base)
    commit, reveal = net.window(cycle, Phase.COMMIT), net.window(cycle, Phase.REVEAL)
    net.clock.to_block(commit.start)
    for name, role in sorted(roles.items()):
        if role not in ("no_commitment", "copy", "copy_noise"):
            net.commit_hash(name, files[name], cycle)
    net.clock.to_block(commit.start + 1)
    for name, role in sorted(roles.items()):
        if role in ("copy", "copy_noise"):
            net.commit_hash(name, files[name], cycle)
    net.clock.to_block(reveal.start)
    for name, role in sorted(roles.items()):
        if role == "hash_mismatch":
            other = _file(
                net,
                name,
                "sign_flip",
                deltas[(groups[hotkey[name]], 1)],
                cycle=cycle,
                group=0,
                base=base,
            )
            net.reveal(name, other, cycle)
        elif role != "late":
            net.reveal(name, files[name], cycle)
    net.clock.to_block(net.window(cycle, Phase.VALIDATE).start)
    for name, role in roles.items():
        if role == "late":
            net.reveal(name, files[name], cycle)


def _held_out_loss(model, corpora) -> float:
    seqs = torch.cat([corpora["code"].held_out[:24], corpora["math"].held_out[:24]])
    return sequence_losses(model, seqs, batch_size=24).mean().item()


def test_cycles_with_honest_miners_and_every_cheat(
    net, vdata, initial_state, deltas, publish_initial, train_delta
):
    _, corpora = vdata
    net.wallet("val", stake=2000)
    net.wallet("val2", stake=1500)
    names = {net.wallet(f"m{i:02d}").hotkey.ss58_address: f"m{i:02d}" for i in range(22)}
    net.clock.to_block(1)
    base = publish_initial(net, "val", initial_state)
    net.clock.to_block(net.schedule.cycle_start(1))
    groups, uids = assignment(net.chain, net.schedule, net.protocol.miners, [0, 1], 1)
    roles = _roles(groups, names)
    _submit(net, roles, groups, deltas, cycle=1, base=base, names=names)

    second = net.validator("val2")
    publisher = net.validator(
        "val", "--validator.model_repo", "val/global", "--validator.evidence_repo", "val/evidence"
    )
    theirs = second.run_cycle(1)
    ours = publisher.run_cycle(1)

    by_role = {roles[names[r.hotkey]]: r for r in ours.submissions}
    for role in ("honest1", "honest2"):
        assert by_role[role].reason is None and by_role[role].score > 0, by_role[role]
        assert by_role[role].judgement.passed
    assert by_role["copy"].reason is Reason.DUPLICATE and by_role["copy"].score == 0
    assert by_role["copy_noise"].reason is Reason.DUPLICATE and by_role["copy_noise"].score == 0
    for role, reason in CHEATS.items():
        assert by_role[role].reason == reason, (role, by_role[role].reason, by_role[role].detail)
        assert by_role[role].score == 0
    # Two validators on the same inputs: the same losses, verdicts and scores.
    assert [r.model_dump() for r in theirs.submissions] == [
        r.model_dump() for r in ours.submissions
    ]
    # Weights go to the honest miners only.
    row = net.chain.weights()[net.chain.uid(net.wallets["val"].hotkey.ss58_address)]
    honest_uids = {uids[h] for h, n in names.items() if roles.get(n) in ("honest1", "honest2")}
    assert set(row) == honest_uids
    assert all(g.merged for g in ours.groups), [g.gate for g in ours.groups]
    assert net.hub.revisions("val/evidence")[0].message == "evidence cycle 1"

    initial = publisher.scorer.model.__class__(publisher.scorer.model.config)
    initial.load_state_dict(initial_state)
    losses = [_held_out_loss(initial, corpora), _held_out_loss(publisher.scorer.model, corpora)]

    # Cycle 2: an honest miner per group trains on the merged model.
    net.clock.to_block(net.schedule.cycle_start(2))
    groups, _ = assignment(net.chain, net.schedule, net.protocol.miners, [0, 1], 2)
    state = {k: v.clone() for k, v in publisher.scorer.model.state_dict().items()}
    fresh = {(g, 1): train_delta(state, g, 3) for g in (0, 1)}
    roles2 = {
        min(names[h] for h in groups if groups[h] == g and h in names): "honest1" for g in (0, 1)
    }
    _submit(net, roles2, groups, fresh, cycle=2, base=publisher.revision, names=names)
    third = publisher.run_cycle(2)
    assert any(r.score > 0 for r in third.submissions), [r.detail for r in third.submissions]
    losses.append(_held_out_loss(publisher.scorer.model, corpora))
    assert losses[0] > losses[1] > losses[2], (
        losses,
        [g.gate for g in third.groups],
        [(r.group, r.reason, r.detail) for r in third.submissions],
    )
