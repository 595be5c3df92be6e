"""The loss curve: every global model the run publishes, on one fixed held-out sample.

The validators measure on a new seeded sample each cycle, which is right for scoring but makes a
curve jump with the sample (on the tiny model by more than a cycle's progress); here every model
sees the same first `num_sequences` held-out sequences of each domain. Models are found as miners
find them (the canonical `bz1m` commitment) and verified against their manifest. One model costs
about a second of one core, so it runs live, between cycles.
"""

from pathlib import Path

from blockzero.chain.port import Chain
from blockzero.data.domains import load_data_config, load_domains
from blockzero.data.tokenizer import load_tokenizer
from blockzero.global_model import ModelCache, canonical_model
from blockzero.hub.port import Hub
from blockzero.localnet.records import HeldOut
from blockzero.model.shards import read_model_files
from blockzero.owner.init_model import held_out_losses
from blockzero.protocol.expert_groups import load_registry


class HeldOutCurve:
    def __init__(
        self,
        chain: Chain,
        hub: Hub,
        *,
        registry_file: Path,
        data_file: Path,
        cache_dir: Path,
        num_sequences: int,
    ) -> None:
        self.chain, self.hub = chain, hub
        self.registry = load_registry(registry_file)
        data = load_data_config(data_file)
        self.corpora = load_domains(data, load_tokenizer(data.tokenizer))
        self.cache = ModelCache(cache_dir)
        self.num_sequences = num_sequences
        self.points: list[HeldOut] = []

    def measure_latest(self) -> HeldOut | None:
        """Add the model canonical now, if it is one not measured yet; return the new point."""
        canon = canonical_model(self.chain, at_block=self.chain.current_block())
        if canon is None or any(p.revision == canon.revision for p in self.points):
            return None
        manifest, paths = self.cache.fetch_all(self.hub, canon)
        model = read_model_files(paths, manifest, self.registry)
        losses = held_out_losses(
            model, self.corpora, num_sequences=self.num_sequences, device="cpu"
        )
        self.points.append(
            HeldOut(cycle=canon.commitment.cycle, revision=canon.revision, losses=losses)
        )
        return self.points[-1]
