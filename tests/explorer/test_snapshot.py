"""The snapshot reads what the chain and hub hold, and tolerates what they do not."""

from collections import Counter

import pytest
from explorer_subnet import EVIDENCE_CYCLES, EVIDENCE_REPO, Subnet, commit_file, expected_losses

from blockzero.chain.local_chain import LocalChain
from blockzero.cli.explorer import snapshot_builder
from blockzero.explorer.evidence import HubEvidence, NoEvidence, summarize
from blockzero.explorer.snapshot import build_snapshot, subnet_links
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.version import PROTOCOL_VERSION
from blockzero.settings import load_settings
from blockzero.validator.evidence import evidence_file


def test_snapshot_matches_chain_and_hub(subnet: Subnet) -> None:
    snap = snapshot_builder(load_settings(subnet.settings_args))()
    mg = subnet.chain.metagraph()

    assert (snap.network, snap.netuid) == ("local", 1)
    assert snap.cycle == ProtocolConfig(version=PROTOCOL_VERSION).cycle.cycle_of(snap.block)
    chain_rows = [(n.uid, n.hotkey, n.stake, n.incentive) for n in mg.neurons]
    assert [(n.uid, n.hotkey, n.stake, n.incentive) for n in snap.neurons] == chain_rows
    assert [n.is_miner for n in snap.neurons] == [False, False, True, True, True, True]
    assert snap.weights == subnet.chain.weights()
    assert snap.validator_uids == [0, 1]
    assert snap.miner_uids == [2, 3, 4, 5]
    # Four miners over four groups: balanced assignment gives each group exactly one.
    groups = [n.group for n in snap.neurons if n.is_miner]
    assert Counter(groups) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    assert all(n.group is None for n in snap.neurons if not n.is_miner)

    assert snap.model is not None
    assert snap.model.publisher == mg.neurons[0].hotkey  # the most stake
    assert snap.model.registry_matches is True
    assert snap.evidence == [summarize(e) for e in subnet.evidence]
    assert snap.links == [] and snap.notes == []


def test_snapshot_without_registry_or_evidence(subnet: Subnet) -> None:
    snap = build_snapshot(
        subnet.chain,
        subnet.hub,
        network="local",
        protocol=ProtocolConfig(version=PROTOCOL_VERSION),
        registry=None,
        evidence=NoEvidence(),
    )
    assert snap.evidence == [] and snap.registry is None
    assert all(n.group is None for n in snap.neurons)
    assert snap.model is not None and snap.model.registry_matches is None
    assert any("registry" in note for note in snap.notes)


def test_no_model_committed_is_a_note(tmp_path, subnet: Subnet) -> None:
    LocalChain.create(tmp_path / "empty.db", [subnet.chain.params])
    empty = LocalChain(tmp_path / "empty.db", subnet.chain.netuid)
    snap = build_snapshot(
        empty,
        subnet.hub,
        network="local",
        protocol=ProtocolConfig(version=PROTOCOL_VERSION),
        registry=None,
        evidence=NoEvidence(),
    )
    assert snap.neurons == [] and snap.weights == {} and snap.model is None
    assert any("no global model" in note for note in snap.notes)


def test_hub_evidence_skips_bad_files_and_keeps_the_latest_per_cycle(subnet: Subnet) -> None:
    hub, last = subnet.hub, subnet.evidence[-1]
    commit_file(hub, EVIDENCE_REPO, evidence_file(22), b"{not json", "evidence cycle 22")
    other = last.model_dump_json().encode()  # cycle 21's file under cycle 23's name
    commit_file(hub, EVIDENCE_REPO, evidence_file(23), other, "evidence cycle 23")
    commit_file(hub, EVIDENCE_REPO, "notes.txt", b"hello", "readme")
    redo = last.model_copy(update={"validator": "someone-else"})
    commit_file(
        hub, EVIDENCE_REPO, evidence_file(21), redo.model_dump_json().encode(), "evidence cycle 21"
    )
    cycles = HubEvidence(hub, EVIDENCE_REPO).cycles()
    assert [c.cycle for c in cycles] == list(EVIDENCE_CYCLES)
    assert cycles[-1].validator == "someone-else"
    assert HubEvidence(hub, "val/missing").cycles() == []


def test_summary_of_a_cycle(subnet: Subnet) -> None:
    summary = summarize(subnet.evidence[0])
    assert summary.global_losses == pytest.approx(expected_losses(0))
    assert summary.merged_groups == [0, 1, 2]
    honest, cheat = summary.submissions[0], summary.submissions[3]
    assert honest.passed and honest.reason is None
    assert honest.loss_before == pytest.approx(3.1) and honest.loss_after == pytest.approx(3.0)
    assert honest.improvement == pytest.approx(0.1) and honest.score == pytest.approx(0.1)
    assert not cheat.passed and cheat.reason == "not_significant" and cheat.score == 0.0


def test_links_only_for_real_networks() -> None:
    assert subnet_links("local", 1) == [] and subnet_links("test", 1) == []
    urls = [link.url for link in subnet_links("finney", 7)]
    assert urls == ["https://taomarketcap.com/subnets/7", "https://taostats.io/subnets/7"]
