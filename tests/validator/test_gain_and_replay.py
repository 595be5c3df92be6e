"""The gain rules and the replay check in whole cycles on the embedded chain and hub: a weak
but significant delta is refused below its peers and the audit agrees; after a restart,
replays of cycle 1's accepted deltas (under the miners' new groups) are refused before scoring
and a fresh delta alone in its group is kept."""

import torch

from blockzero.global_model import ModelCache
from blockzero.protocol.cycle import Phase
from blockzero.roster import assignment
from blockzero.validator.audit import audit_cycle
from blockzero.validator.evidence import Reason

ARGS = ("--validator.model_repo", "val/global", "--validator.evidence_repo", "val/evidence")
# Scaled down, an honest delta keeps its direction, so its per-sequence gains shrink together
# and the t statistic stays high: the profile of the noise delta that passed on the localnet.
WEAK_SCALE = 0.05


def _submit(net, files: dict[str, object], cycle: int) -> None:
    net.clock.to_block(net.window(cycle, Phase.COMMIT).start)
    for name, path in sorted(files.items()):
        net.commit_hash(name, path, cycle)
    net.clock.to_block(net.window(cycle, Phase.REVEAL).start)
    for name, path in sorted(files.items()):
        net.reveal(name, path, cycle)
    net.clock.to_block(net.window(cycle, Phase.VALIDATE).start)


def _audit(net, evidence, vregistry, vdata):
    return audit_cycle(
        evidence,
        hub=net.hub,
        registry=vregistry[1],
        held_out={d: c.held_out for d, c in vdata[1].items()},
        cache=ModelCache(net.tmp / "audit"),
        work_dir=net.tmp / f"audit-{evidence.cycle}",
        max_bytes=8 << 20,
        batch_size=16,
    )


def test_weak_delta_below_peers_then_replays_refused_after_restart(
    net, initial_state, deltas, publish_initial, train_delta, vregistry, vdata
):
    net.wallet("val", stake=2000)
    names = {net.wallet(f"m{i}").hotkey.ss58_address: f"m{i}" for i in range(6)}
    net.clock.to_block(1)
    base = publish_initial(net, "val", initial_state)
    net.clock.to_block(net.schedule.cycle_start(1))
    groups, _ = assignment(net.chain, net.schedule, net.protocol.miners, [0, 1], 1)
    members = {g: sorted(names[h] for h, gg in groups.items() if gg == g) for g in (0, 1)}
    assert all(len(m) == 3 for m in members.values()), members
    roles = {n: r for g in (0, 1) for n, r in zip(members[g], ("h1", "h2", "weak"), strict=True)}
    group_of = {n: g for g in (0, 1) for n in members[g]}

    sent: dict[str, dict[str, torch.Tensor]] = {}
    for name, role in roles.items():
        g = group_of[name]
        if role == "weak":
            sent[name] = {k: WEAK_SCALE * v for k, v in train_delta(initial_state, g, 3).items()}
        else:
            sent[name] = deltas[(g, 1 if role == "h1" else 2)]
    files = {n: net.write(n, d, cycle=1, group=group_of[n], base=base) for n, d in sent.items()}
    _submit(net, files, 1)

    ours = net.validator("val", *ARGS).run_cycle(1)
    by_role = {(group_of[names[r.hotkey]], roles[names[r.hotkey]]): r for r in ours.submissions}
    for g in (0, 1):
        weak = by_role[(g, "weak")]
        assert weak.judgement.passed and weak.judgement.t > weak.judgement.t_critical, weak
        assert weak.reason is Reason.BELOW_PEERS and weak.score == 0, weak
        for role in ("h1", "h2"):
            assert by_role[(g, role)].reason is None and by_role[(g, role)].score > 0
        median = next(x.peer_median_gain for x in ours.groups if x.group == g)
        assert weak.judgement.domain_gain < ours.params.min_relative_gain * median
    report = _audit(net, ours, vregistry, vdata)
    assert report.rescored == 6 and report.mismatches == []

    # Cycle 2, a restarted validator. Groups rotate; each miner writes for its new group: h1
    # replays its own delta, h2 a rescaled copy of its own, the weak miner a fresh honest delta
    # trained on the merged model.
    restarted = net.validator("val", *ARGS)
    assert len(restarted.state.history) == 4
    assert restarted.sketches.keys() == {p.key for p in restarted.state.history}
    net.clock.to_block(net.schedule.cycle_start(2))
    groups2, _ = assignment(net.chain, net.schedule, net.protocol.miners, [0, 1], 2)
    canon = restarted.sync_model(2)
    merged = {k: v.clone() for k, v in restarted.scorer.model.state_dict().items()}
    again = {}
    for h, name in names.items():
        if roles[name] == "h1":
            again[name] = sent[name]
        elif roles[name] == "h2":
            again[name] = {k: 1.1 * v for k, v in sent[name].items()}
        else:
            again[name] = train_delta(merged, groups2[h], 4)
    hotkey = {n: h for h, n in names.items()}
    files = {
        n: net.write(n, d, cycle=2, group=groups2[hotkey[n]], base=canon.revision)
        for n, d in again.items()
    }
    _submit(net, files, 2)
    second = restarted.run_cycle(2)
    by_name = {names[r.hotkey]: r for r in second.submissions}
    for name, role in roles.items():
        r = by_name[name]
        if role == "h1":
            assert r.reason is Reason.REPLAY and "same tensors" in r.detail, r
        elif role == "h2":
            assert r.reason is Reason.REPLAY and "cosine" in r.detail, r
        if role != "weak":
            assert r.judgement is None and r.score == 0  # refused before any forward pass
    fresh = [by_name[n] for n, role in roles.items() if role == "weak"]
    assert all(r.reason is not Reason.REPLAY and r.judgement is not None for r in fresh), fresh
    assert any(r.score > 0 for r in fresh), [(r.reason, r.detail) for r in fresh]
    for g in second.groups:
        passing = [r for r in fresh if r.group == g.group and r.judgement.passed]
        if len(passing) == 1:  # alone: its own median, kept
            assert g.peer_median_gain == passing[0].judgement.domain_gain
            assert passing[0].reason is None and passing[0].score > 0
    report = _audit(net, second, vregistry, vdata)
    assert report.rescored == 2 and report.mismatches == []
