"""The miner's steps before the chain sees anything: who am I, which group, train, write.

Each is a function of its inputs so the cycle loop reads as a list of calls and each step can be
tested alone.
"""

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from blockzero.chain.port import Chain
from blockzero.data.batches import train_batches
from blockzero.data.domains import DomainCorpus
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.miner.plan import plan_memory
from blockzero.model.group_rows import GroupTensors
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.training import InnerConfig, TrainReport, train
from blockzero.protocol.assignment import MinerRule
from blockzero.protocol.cycle import CycleSchedule, Phase
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry
from blockzero.roster import assignment
from blockzero.settings import MinerSettings

logger = logging.getLogger(__name__)

_ORDER_TAG = b"blockzero/miner/order/v1\x00"


class NotRegisteredError(RuntimeError):
    """The hotkey holds no uid on the subnet: the miner cannot take part and exits."""


class MinerOutOfMemory(RuntimeError):
    """Training ran out of device memory; the message carries the plan and what to change."""


def check_registered(chain: Chain, hotkey: str) -> int:
    uid = chain.uid(hotkey)
    if uid is None:
        raise NotRegisteredError(
            f"hotkey {hotkey} is not registered on netuid {chain.netuid}: register it first "
            f"(btcli subnet register --netuid {chain.netuid} --wallet.name ... --wallet.hotkey ...)"
        )
    return uid


def assigned_group(
    chain: Chain,
    schedule: CycleSchedule,
    rule: MinerRule,
    registry: ExpertGroupRegistry,
    *,
    hotkey: str,
    cycle: int,
) -> ExpertGroup | None:
    """This hotkey's group for `cycle` (docs/cycle.md "Which group"); None if it counts as a
    validator."""
    groups, _ = assignment(chain, schedule, rule, [g.id for g in registry.groups], cycle)
    if hotkey not in groups:
        logger.error("hotkey %s counts as a validator (permit and stake): no group", hotkey[:8])
        return None
    return registry.group(groups[hotkey])


def order_seed(hotkey: str, cycle: int) -> int:
    """The miner's sample order: sha256(tag || hotkey || cycle), so two honest miners (or two
    cycles) never walk the data in the same order."""
    digest = hashlib.sha256(_ORDER_TAG + hotkey.encode() + cycle.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class TrainSetup:
    """How a cycle's training runs. `frozen_dtype` torch.int8 holds frozen experts as int8."""

    mode: TrainingMode
    frozen_dtype: torch.dtype
    device: torch.device
    batch_size: int
    inner: InnerConfig
    group_dtype: torch.dtype = torch.float32
    checkpointing: bool = False

    @classmethod
    def from_settings(cls, cfg: MinerSettings) -> "TrainSetup":
        """The miner settings as a setup. On CPU bf16 frozen experts and group rows stay fp32:
        bf16 matmuls there are slow and allocate fp32 work buffers (scripts/bench/miner_plan.py);
        int8 stays int8 (dequantized to fp32 per expert)."""
        cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        frozen = getattr(torch, cfg.frozen_dtype)
        rows = getattr(torch, cfg.group_dtype)
        if not cuda and torch.bfloat16 in (frozen, rows):
            logger.info("on CPU frozen experts and group rows stay float32, not bfloat16")
            frozen = torch.float32 if frozen is torch.bfloat16 else frozen
            rows = torch.float32
        return cls(
            mode=TrainingMode(cfg.mode),
            frozen_dtype=frozen,
            device=torch.device("cuda" if cuda else "cpu"),
            batch_size=cfg.batch_size,
            inner=InnerConfig(lr=cfg.lr, optimizer=cfg.optimizer),
            group_dtype=rows,
            checkpointing=cfg.activation_checkpointing,
        )


def train_group(
    model: torch.nn.Module,
    group: ExpertGroup,
    corpus: DomainCorpus,
    setup: TrainSetup,
    *,
    seed: int,
    deadline: float,
) -> tuple[TrainReport, GroupTensors]:
    """Train `group` of `model` until `deadline` (time.monotonic) and return delta = start - end."""
    gtm = prepare_group_training(
        model,
        group,
        setup.mode,
        frozen_dtype=setup.frozen_dtype,
        group_dtype=setup.group_dtype,
        checkpointing=setup.checkpointing,
    )
    start = {k: v.cpu() for k, v in gtm.group_tensors().items()}
    if setup.device.type == "cuda":
        for p in gtm.model.parameters():
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)
    batches = train_batches(corpus.train, batch_size=setup.batch_size, seed=seed)
    try:
        gtm.model.to(setup.device)
        report = train(
            gtm.model,
            gtm.trainable_parameters(),
            batches,
            setup.inner,
            deadline=deadline,
            device=setup.device,
            progress=True,
            description=f"group {group.id}",
        )
    except torch.OutOfMemoryError as e:
        plan = plan_memory(
            model.config,
            group_size={layer: len(ids) for layer, ids in group.experts.items()},
            mode=setup.mode.value,
            frozen_precision=str(setup.frozen_dtype).removeprefix("torch."),
            group_precision=str(setup.group_dtype).removeprefix("torch."),
            optimizer=setup.inner.optimizer,
            checkpointing=setup.checkpointing,
            batch_size=setup.batch_size,
            seq_len=corpus.train.shape[1],
        )
        raise MinerOutOfMemory(
            "out of device memory while training. The plan:\n  "
            + "\n  ".join(plan.lines(0.0)[:-1])
            + "\nLower miner.batch_size, or set miner.frozen_dtype=int8, miner.group_dtype=bfloat16, "
            "miner.optimizer=adamw8bit, miner.activation_checkpointing=true "
            "(see `blockzero miner --plan` and docs/miner.md)."
        ) from e
    end = {k: v.cpu() for k, v in gtm.group_tensors().items()}
    return report, pseudo_gradient(start, end)


def train_deadline(
    chain: Chain, schedule: CycleSchedule, cycle: int, *, block_time_s: float, headroom_s: float
) -> float:
    """`time.monotonic()` by which training must stop: the train phase's end minus headroom.

    From the head block `h` the phase ends after between `stop - h - 1` and `stop - h` blocks;
    the lower bound is taken, so training never runs into the commit phase.
    """
    stop = schedule.phase_window(cycle, Phase.TRAIN).stop
    blocks_left = stop - chain.current_block() - 1
    return time.monotonic() + blocks_left * block_time_s - headroom_s


def prune_submissions(directory: Path, keep: set[Path]) -> None:
    for path in directory.glob("cycle-*.safetensors"):
        if path not in keep:
            path.unlink(missing_ok=True)
