"""Pure parts of the miner: cheating strategies, the freshness policy, the memory plan, seeds."""

import math

import pytest
import torch

from blockzero.delta.pseudo_gradient import global_norm
from blockzero.miner.cheats import Strategy, apply_strategy
from blockzero.miner.fetch import files_to_fetch
from blockzero.miner.plan import plan_memory
from blockzero.miner.state import HeldShard
from blockzero.miner.steps import TrainSetup, order_seed
from blockzero.protocol.manifest import FileEntry, ModelManifest
from blockzero.settings import MinerSettings

HONEST = {"a": torch.ones(2, 3), "b": torch.full((4,), -2.0)}


@pytest.mark.parametrize("strategy", list(Strategy))
def test_strategies_keep_the_layout(strategy):
    out = apply_strategy(strategy, HONEST, copied=None, seed=1)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in HONEST.items()}


def test_strategy_values():
    norm = global_norm(HONEST)
    assert apply_strategy(Strategy.HONEST, HONEST, copied=None, seed=0) is HONEST
    assert global_norm(apply_strategy(Strategy.ZERO, HONEST, copied=None, seed=0)) == 0
    assert math.isclose(
        global_norm(apply_strategy(Strategy.NOISE, HONEST, copied=None, seed=0)), norm, rel_tol=1e-5
    )
    assert apply_strategy(Strategy.SIGN_FLIP, HONEST, copied=None, seed=0)["b"].equal(-HONEST["b"])
    assert math.isclose(
        global_norm(apply_strategy(Strategy.SCALE, HONEST, copied=None, seed=0)),
        100 * norm,
        rel_tol=1e-5,
    )
    assert not torch.isfinite(apply_strategy(Strategy.NAN, HONEST, copied=None, seed=0)["a"]).all()
    other = {k: v * 3 for k, v in HONEST.items()}
    assert apply_strategy(Strategy.COPY, HONEST, copied=other, seed=0) is other
    noisy = apply_strategy(Strategy.COPY_NOISE, HONEST, copied=other, seed=0)
    assert 0 < global_norm({k: noisy[k] - other[k] for k in other}) < 0.02 * global_norm(other)


def _manifest(shas: dict[str, str]) -> ModelManifest:
    return ModelManifest(
        cycle=5,
        registry_sha256="0" * 64,
        dtype="float32",
        files={n: FileEntry(sha256=s * 64, bytes=10) for n, s in shas.items()},
    )


def test_freshness_policy_fetches_own_group_and_bounded_others():
    names = ["config.json", "shared.safetensors"] + [f"group-{i}.safetensors" for i in range(4)]
    manifest = _manifest(dict.fromkeys(names, "b"))
    assert files_to_fetch(manifest, {}, group_id=0, cycle=5, max_stale_cycles=3) == sorted(names)
    held = {
        n: HeldShard(sha256="a" * 64, bytes=10, cycle=c)
        for n, c in zip(names, [5, 5, 5, 4, 3, 2], strict=True)
    }
    exact = ["config.json", "group-0.safetensors", "shared.safetensors"]
    assert files_to_fetch(manifest, held, group_id=0, cycle=5, max_stale_cycles=0) == [
        *exact,
        "group-3.safetensors",
        "group-2.safetensors",
        "group-1.safetensors",
    ]
    # S=3: at least ceil(3 / 4) = 1 other, the oldest; nothing is past the bound yet.
    assert files_to_fetch(manifest, held, group_id=0, cycle=5, max_stale_cycles=3) == [
        *exact,
        "group-3.safetensors",
    ]
    # S=1: ceil(3/2) = 2 oldest, and group-3 (age 3) is past the bound anyway.
    assert files_to_fetch(manifest, held, group_id=0, cycle=5, max_stale_cycles=1) == [
        *exact,
        "group-3.safetensors",
        "group-2.safetensors",
    ]


def test_freshness_quota_ignores_the_ungrouped_shard():
    names = ["config.json", "shared.safetensors", "ungrouped.safetensors"]
    names += [f"group-{i}.safetensors" for i in range(3)]
    manifest = _manifest(dict.fromkeys(names, "b"))
    held = {n: HeldShard(sha256="a" * 64, bytes=10, cycle=5) for n in names}
    held["ungrouped.safetensors"] = HeldShard(sha256="b" * 64, bytes=10, cycle=0)
    exact = ["config.json", "group-0.safetensors", "shared.safetensors"]
    # S=1, two other groups moved: ceil(2 / 2) = 1 is refreshed now, the other next cycle.
    assert files_to_fetch(manifest, held, group_id=0, cycle=5, max_stale_cycles=1) == [
        *exact,
        "group-1.safetensors",
    ]


def test_plan_counts_the_tiny_model(tiny_config):
    plan = plan_memory(tiny_config, group_size=4, batch_size=8, seq_len=128)
    per_expert = 3 * tiny_config.hidden_size * tiny_config.moe_intermediate_size
    assert plan.trained_params == 4 * 4 * per_expert
    assert plan.frozen_expert_params == 4 * 16 * per_expert
    assert plan.gradient_bytes == plan.trained_bytes == 4 * plan.trained_params
    assert plan.optimizer_bytes == 2 * plan.trained_bytes
    assert plan.fits(1.0) and not plan.fits(plan.total_bytes / 2**30 / 2)
    partial = plan_memory(tiny_config, group_size=4, mode="partial", batch_size=8, seq_len=128)
    assert partial.frozen_expert_params == 0


def test_plan_prices_the_low_memory_options(tiny_config):
    base = plan_memory(tiny_config, group_size=4, batch_size=8, seq_len=128)
    low = plan_memory(
        tiny_config,
        group_size=4,
        frozen_precision="int8",
        group_precision="bfloat16",
        optimizer="adamw8bit",
        checkpointing=True,
        batch_size=8,
        seq_len=128,
    )
    h, inter = tiny_config.hidden_size, tiny_config.moe_intermediate_size
    rows = 4 * 16 * (2 * inter + h)  # output rows of gate_up [E, 2I, H] and down [E, H, I]
    assert low.frozen_bytes == low.frozen_expert_params + 4 * rows
    assert low.trained_bytes == low.gradient_bytes == 2 * low.trained_params
    assert low.optimizer_bytes == int(2 * low.trained_params * (1 + 4 / 256))
    assert low.activation_bytes == base.checkpointed_activation_bytes < base.activation_bytes / 2
    lines = base.lines(base.total_bytes / 2**30 / 2)
    assert "activation_checkpointing" in lines[-1]
    assert not any("activation_checkpointing" in line for line in low.lines(0.0))


def test_train_setup_follows_the_miner_settings():
    cfg = MinerSettings(
        frozen_dtype="int8",
        group_dtype="bfloat16",
        optimizer="adamw8bit",
        activation_checkpointing=True,
        device="cuda",
    )
    setup = TrainSetup.from_settings(cfg)
    assert setup.frozen_dtype == torch.int8 and setup.group_dtype == torch.bfloat16
    assert setup.inner.optimizer == "adamw8bit" and setup.checkpointing
    assert setup.device == torch.device("cuda")
    cpu = TrainSetup.from_settings(cfg.model_copy(update={"device": "cpu"}))
    assert cpu.frozen_dtype == torch.int8 and cpu.group_dtype == torch.float32
    cpu_bf16 = TrainSetup.from_settings(MinerSettings(frozen_dtype="bfloat16", device="cpu"))
    assert cpu_bf16.frozen_dtype == torch.float32


def test_order_seed_differs_by_hotkey_and_cycle():
    assert len({order_seed("a", 1), order_seed("b", 1), order_seed("a", 2)}) == 3
    assert order_seed("a", 1) == order_seed("a", 1)
