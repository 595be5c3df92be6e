"""Finding the canonical model on chain and fetching it, verified, through the content cache."""

import hashlib

import pytest
import torch

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.global_model import ModelCache, canonical_model
from blockzero.hub.local_hub import LocalHub
from blockzero.model.loading import build_model
from blockzero.model.shards import ManifestMismatch, read_model_files, write_model_dir
from blockzero.protocol.commitments import ManifestCommitment, encode
from blockzero.publish import publish_model


class CountingHub(LocalHub):
    def __init__(self, root):
        super().__init__(root)
        self.downloads: list[str] = []

    def download(self, repo_id, filename, revision, **kwargs):
        self.downloads.append(filename)
        return super().download(repo_id, filename, revision, **kwargs)


@pytest.fixture
def network(tmp_path, make_wallet):
    LocalChain.create(tmp_path / "chain.db", [SubnetParams(netuid=1)], block_time_s=0.05)
    chain = LocalChain(tmp_path / "chain.db", 1)
    hub = CountingHub(tmp_path / "hub")
    wallets = {}
    for name, stake in [("big", 5000.0), ("small", 2000.0)]:
        wallets[name] = make_wallet(name)
        chain.register(wallets[name].hotkey.ss58_address)
        chain.add_stake(wallets[name].hotkey.ss58_address, stake)
    return chain, hub, wallets


def publish(tmp_path, chain, hub, wallet, model, registry, cycle, repo):
    manifest = write_model_dir(tmp_path / f"{repo}-{cycle}", model, registry, cycle=cycle)
    return publish_model(
        chain=chain,
        hub=hub,
        wallet=wallet,
        repo_id=f"owner/{repo}",
        model_dir=tmp_path / f"{repo}-{cycle}",
        manifest=manifest,
    )


def test_canonical_model_is_the_top_stake_validators_as_of_a_block(
    tmp_path, network, tiny_config, registry
):
    chain, hub, wallets = network
    model = build_model(tiny_config, seed=1)
    small = publish(tmp_path, chain, hub, wallets["small"], model, registry, 0, "small")
    assert canonical_model(chain, at_block=chain.current_block()).commitment == small
    chain.wait_for_block(chain.current_block() + 1)
    before_big = chain.current_block()
    chain.wait_for_block(before_big + 1)
    big = publish(tmp_path, chain, hub, wallets["big"], model, registry, 0, "big")
    head = chain.current_block()
    assert canonical_model(chain, at_block=head).commitment == big
    assert canonical_model(chain, at_block=before_big).commitment == small
    named = canonical_model(chain, at_block=head, publisher=wallets["small"].hotkey.ss58_address)
    assert named.commitment == small


def test_fetch_verifies_and_reuses_unchanged_shards(tmp_path, network, tiny_config, registry):
    chain, hub, wallets = network
    model = build_model(tiny_config, seed=1)
    publish(tmp_path, chain, hub, wallets["big"], model, registry, 0, "m")
    cache = ModelCache(tmp_path / "cache")
    canon = canonical_model(chain, at_block=chain.current_block())
    manifest, paths = cache.fetch_all(hub, canon)
    loaded = read_model_files(paths, manifest, registry)
    assert all(v.equal(model.state_dict()[k]) for k, v in loaded.state_dict().items())

    with torch.no_grad():
        model.model.layers[0].mlp.experts.down_proj[0].add_(1.0)
    chain.wait_for_block(chain.current_block() + 1)
    publish(tmp_path, chain, hub, wallets["big"], model, registry, 1, "m")
    hub.downloads.clear()
    canon = canonical_model(chain, at_block=chain.current_block())
    cache.fetch_all(hub, canon)
    assert sorted(hub.downloads) == ["group-0.safetensors", "manifest.json"]


def test_manifest_that_does_not_match_the_commitment_is_refused(
    tmp_path, network, tiny_config, registry
):
    chain, hub, wallets = network
    real = publish(tmp_path, chain, hub, wallets["big"], build_model(tiny_config), registry, 0, "m")
    forged = real.model_copy(update={"manifest_sha256": hashlib.sha256(b"other").digest()})
    chain.wait_for_block(chain.current_block() + 1)
    chain.publish_commitment(wallets["big"], encode(ManifestCommitment(**forged.model_dump())))
    canon = canonical_model(chain, at_block=chain.current_block())
    with pytest.raises(ManifestMismatch, match="does not match the hash committed"):
        ModelCache(tmp_path / "cache").manifest(hub, canon)


def test_no_manifest_on_chain_gives_none(network):
    chain, _, _ = network
    assert canonical_model(chain, at_block=chain.current_block()) is None
