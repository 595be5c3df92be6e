"""Kill -9 mid-merge, restart: the merge lands exactly once; a clean restart resumes exactly;
the published evidence re-scores to the same numbers."""

import pytest
import torch
from typer.testing import CliRunner

from blockzero.cli.validator import audit_app
from blockzero.global_model import ModelCache
from blockzero.protocol.cycle import Phase
from blockzero.roster import assignment
from blockzero.validator.audit import audit_cycle

ARGS = ("--validator.model_repo", "val/global", "--validator.evidence_repo", "val/evidence")


class Killed(Exception):
    """Stands in for kill -9: nothing after it runs."""


def _two_honest_miners(net, initial_state, deltas, publish_initial) -> None:
    net.wallet("val", stake=2000)
    names = {net.wallet(f"m{i}").hotkey.ss58_address: f"m{i}" for i in range(2)}
    net.clock.to_block(1)
    base = publish_initial(net, "val", initial_state)
    net.clock.to_block(net.schedule.cycle_start(1))
    groups, _ = assignment(net.chain, net.schedule, net.protocol.miners, [0, 1], 1)
    files = {
        name: net.write(name, deltas[(groups[h], i + 1)], cycle=1, group=groups[h], base=base)
        for i, (h, name) in enumerate(sorted(names.items()))
    }
    net.clock.to_block(net.window(1, Phase.COMMIT).start)
    for name, path in files.items():
        net.commit_hash(name, path, 1)
    net.clock.to_block(net.window(1, Phase.REVEAL).start)
    for name, path in files.items():
        net.reveal(name, path, 1)
    net.clock.to_block(net.window(1, Phase.VALIDATE).start)


def test_kill_mid_merge_then_restart(
    net, initial_state, deltas, publish_initial, vregistry, vdata, monkeypatch
):
    _two_honest_miners(net, initial_state, deltas, publish_initial)
    first = net.validator("val", *ARGS)
    merged = {}

    def kill(*args, **kwargs):
        merged.update({k: v.clone() for k, v in first.scorer.model.state_dict().items()})
        raise Killed

    monkeypatch.setattr(first.store, "save", kill)
    with pytest.raises(Killed):
        first.run_cycle(1)

    second = net.validator("val", *ARGS)
    assert second.state is None
    evidence = second.run_cycle(1)
    assert any(g.merged for g in evidence.groups), [g.gate for g in evidence.groups]
    after = second.scorer.model.state_dict()
    assert all(torch.equal(v, merged[k]) for k, v in after.items()), "merged twice or differently"

    third = net.validator("val", *ARGS)
    assert third.state == second.state and third.state.published_revision == second.revision
    net.clock.to_block(net.schedule.cycle_start(2))
    third.sync_model(2)
    assert third.revision == second.revision
    assert all(torch.equal(v, after[k]) for k, v in third.scorer.model.state_dict().items())
    assert third.momentum.keys() == second.momentum.keys()
    assert all(torch.equal(v, second.momentum[k]) for k, v in third.momentum.items())

    report = audit_cycle(
        evidence,
        hub=net.hub,
        registry=vregistry[1],
        held_out={d: c.held_out for d, c in vdata[1].items()},
        cache=ModelCache(net.tmp / "audit"),
        work_dir=net.tmp / "audit-files",
        max_bytes=8 << 20,
        batch_size=16,
    )
    assert report.rescored == 2 and report.mismatches == []


def test_audit_command_rescores_published_evidence(net, initial_state, deltas, publish_initial):
    _two_honest_miners(net, initial_state, deltas, publish_initial)
    net.validator("val", *ARGS).run_cycle(1)
    flags = [
        "--network", "local",
        "--paths.work_dir", str(net.tmp / "chain"),
        "--hub.local_root", str(net.tmp / "hub"),
        "--validator.registry", str(net.registry_path),
        "--validator.data", str(net.data_path),
        "--validator.evidence_repo", "val/evidence",
        "--validator.batch_size", "16",
    ]  # fmt: skip
    result = CliRunner().invoke(audit_app, ["--cycle", "1", *flags])
    assert result.exit_code == 0, result.output
    assert "re-scored 2 submissions, 0 mismatches" in result.output
    missing = CliRunner().invoke(audit_app, ["--cycle", "7", *flags])
    assert missing.exit_code == 1 and "EvidenceNotFound" in missing.output
