"""Everything the explorer shows, gathered from the chain and the hub into one pydantic model.

The page and `/api/snapshot` render the same `ExplorerSnapshot`, so what a script reads is what
a person sees. The chain is required (no chain, no page); the parts that come from the hub (the
canonical model's manifest, the evidence) are optional: when one cannot be read the snapshot
keeps going and says why in `notes`.
"""

import logging
import tempfile
from pathlib import Path

from bittensor import settings as bt_settings
from pydantic import BaseModel, ConfigDict, Field

from blockzero.chain.port import Chain, Metagraph, Neuron
from blockzero.explorer.evidence import CycleSummary, EvidenceSource
from blockzero.global_model import ModelCache, canonical_model
from blockzero.hub.errors import HubError
from blockzero.hub.port import Hub
from blockzero.model.shards import ManifestMismatch
from blockzero.protocol.assignment import MinerRule
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.expert_groups import ExpertGroupRegistry
from blockzero.roster import assignment, neuron_info

logger = logging.getLogger(__name__)

TAOSTATS_SUBNET_URL = "https://taostats.io/subnets/{netuid}"
"""A convention, not the SDK's: it links taomarketcap (bittensor.settings) for mainnet only."""


class NeuronRow(Neuron):
    """One uid: the chain's columns plus its role and, for a miner, this cycle's group."""

    is_miner: bool
    group: int | None = None
    url: str | None = None


class WeightsView(BaseModel):
    """The metagraph and weight rows at one block: all `blockzero weights` needs."""

    model_config = ConfigDict(frozen=True)

    network: str
    netuid: int
    block: int
    neurons: list[NeuronRow]
    weights: dict[int, dict[int, float]]
    """`{validator_uid: {miner_uid: fraction}}`, each row summing to 1."""

    @property
    def validator_uids(self) -> list[int]:
        return sorted(self.weights)

    @property
    def miner_uids(self) -> list[int]:
        """Every miner and every uid that receives weight: the matrix's columns."""
        weighted = {m for row in self.weights.values() for m in row}
        return sorted(weighted | {n.uid for n in self.neurons if n.is_miner})


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    url: str


class ModelInfo(BaseModel):
    """The canonical global model as of the current cycle's first block."""

    model_config = ConfigDict(frozen=True)

    publisher: str
    cycle: int
    repo_id: str
    revision: str
    block: int
    registry_matches: bool | None = None
    """Whether the manifest names the registry shown here; None when the manifest was not read."""


class ExplorerSnapshot(WeightsView):
    """What the page shows and `/api/snapshot` returns; `notes` say what could not be read."""

    cycle: int
    phase: str
    links: list[Link] = Field(default_factory=list)
    registry: ExpertGroupRegistry | None = None
    model: ModelInfo | None = None
    evidence: list[CycleSummary] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def read_weights(chain: Chain, *, network: str, rule: MinerRule) -> WeightsView:
    """Metagraph and weights only: no hub, no registry."""
    mg = chain.metagraph()
    return WeightsView(
        network=network,
        netuid=mg.netuid,
        block=mg.block,
        neurons=_rows(mg, rule, network=network, groups={}),
        weights=chain.weights(),
    )


def build_snapshot(
    chain: Chain,
    hub: Hub,
    *,
    network: str,
    protocol: ProtocolConfig,
    registry: ExpertGroupRegistry | None,
    evidence: EvidenceSource,
    publisher: str | None = None,
) -> ExplorerSnapshot:
    """Read the chain, then the hub; `network` is `local`, a Bittensor network name or URL."""
    mg = chain.metagraph()
    weights = chain.weights()
    schedule = protocol.cycle
    cycle = schedule.cycle_of(mg.block)
    notes: list[str] = []
    groups: dict[str, int] = {}
    if registry is None:
        notes.append("no expert-group registry: groups and assignment are not shown")
    else:
        group_ids = [g.id for g in registry.groups]
        groups, _ = assignment(chain, schedule, protocol.miners, group_ids, cycle)
    model = _model_info(chain, hub, schedule.cycle_start(cycle), registry, publisher, notes)
    try:
        cycles = evidence.cycles()
    except HubError as e:
        notes.append(f"evidence unavailable: {e}")
        cycles = []
    return ExplorerSnapshot(
        network=network,
        netuid=mg.netuid,
        block=mg.block,
        neurons=_rows(mg, protocol.miners, network=network, groups=groups),
        weights=weights,
        cycle=cycle,
        phase=schedule.phase_of(mg.block).value,
        links=subnet_links(network, mg.netuid),
        registry=registry,
        model=model,
        evidence=cycles,
        notes=notes,
    )


def subnet_links(network: str, netuid: int) -> list[Link]:
    """Public explorer pages of the subnet; none for the local chain or a test network."""
    url = bt_settings.explorer_subnet_url(network, netuid)
    if url is None:
        return []
    return [
        Link(label="taomarketcap", url=url),
        Link(label="taostats", url=TAOSTATS_SUBNET_URL.format(netuid=netuid)),
    ]


def _rows(
    mg: Metagraph, rule: MinerRule, *, network: str, groups: dict[str, int]
) -> list[NeuronRow]:
    return [
        NeuronRow(
            **n.model_dump(),
            is_miner=rule.is_miner(neuron_info(n)),
            group=groups.get(n.hotkey),
            url=bt_settings.explorer_account_url(network, "hotkey", n.hotkey),
        )
        for n in mg.neurons
    ]


def _model_info(
    chain: Chain,
    hub: Hub,
    at_block: int,
    registry: ExpertGroupRegistry | None,
    publisher: str | None,
    notes: list[str],
) -> ModelInfo | None:
    canon = canonical_model(chain, at_block=at_block, publisher=publisher)
    if canon is None:
        notes.append(f"no global model committed as of block {at_block}")
        return None
    c = canon.commitment
    matches = None
    if registry is not None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                manifest = ModelCache(Path(tmp)).manifest(hub, canon, timeout_s=30.0)
            matches = manifest.registry_sha256 == registry.sha256()
        except (HubError, ManifestMismatch) as e:
            notes.append(f"manifest of {c.repo_id}@{c.revision[:10]} unreadable: {e}")
    return ModelInfo(
        publisher=canon.publisher,
        cycle=c.cycle,
        repo_id=c.repo_id,
        revision=c.revision,
        block=canon.block,
        registry_matches=matches,
    )
