"""The snapshot reads what the chain and hub hold, and tolerates what they do not."""

from collections import Counter

from explorer_subnet import EVIDENCE_REPO, Subnet, commit_file

from blockzero.chain.local_chain import LocalChain
from blockzero.cli.explorer import snapshot_builder
from blockzero.explorer.evidence import EVIDENCE_FILE, HubEvidence, NoEvidence
from blockzero.explorer.snapshot import build_snapshot, subnet_links
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.version import PROTOCOL_VERSION
from blockzero.settings import load_settings


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
    assert snap.evidence == subnet.evidence
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
    commit_file(subnet.hub, EVIDENCE_REPO, EVIDENCE_FILE, b"{not json", "garbage")
    fixed = subnet.evidence[-1].model_copy(update={"global_losses": {"code": 1.0}})
    commit_file(subnet.hub, EVIDENCE_REPO, EVIDENCE_FILE, fixed.model_dump_json().encode(), "redo")
    cycles = HubEvidence(subnet.hub, EVIDENCE_REPO).cycles()
    assert [c.cycle for c in cycles] == [19, 20, 21]
    assert cycles[-1].global_losses == {"code": 1.0}
    assert HubEvidence(subnet.hub, "val/missing").cycles() == []


def test_links_only_for_real_networks() -> None:
    assert subnet_links("local", 1) == [] and subnet_links("test", 1) == []
    urls = [link.url for link in subnet_links("finney", 7)]
    assert urls == ["https://taomarketcap.com/subnets/7", "https://taostats.io/subnets/7"]
