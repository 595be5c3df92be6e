"""`blockzero miner --plan`: the memory a miner needs, by arithmetic, before it loads anything.

    weights     shared weights at their precision + frozen experts at theirs (int8: one byte a
                weight plus an fp32 scale per row) + the group's trainable rows (fp32 or bf16)
    gradients   the group's rows only, at the group's precision
    optimizer   AdamW's two moments for the group's rows: fp32 (torch, fp32 rows), bf16 (torchao
                with stochastic rounding, bf16 rows) or 8-bit with an fp32 scale per 256 values
                (torchao AdamW8bit)
    activations what autograd keeps for the backward pass, per token (below)

Full routing keeps every expert (the fused tensors stay whole; the group's rows are copied out
into a small trainable tensor), partial keeps only the group's. Activations are counted per token
from what the model saves for backward: per decoder layer the norms' inputs and outputs, q/k
before and after their norms and rotary embedding, v, the attention output, the router's logits
and probabilities, and for each of the top-k routed slots the gathered input, the gate/up output,
the activation, the product and the down output; at the end the logits at the compute precision
plus the fp32 copy and log-softmax the loss keeps. Gradients of the frozen experts' inputs still
flow (earlier layers hold trainable rows), so nothing below the first MoE layer is skipped. With
activation checkpointing each layer keeps only its input and router logits, and one layer's full
activations exist at a time (while it is recomputed in backward). Not counted: the one expert
slice int8 dequantizes at a time (3 x hidden x expert FFN at the compute precision, 12 MB for
OLMoE) and the optimizer's step temporaries.
Configs come from `configs/models/*.yaml` or from published config values typed in; a model is
only ever built on the meta device here, so the plan for a 30B model needs no memory.
"""

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict
from transformers import AutoModelForCausalLM, PretrainedConfig

from blockzero.model.families import EXPERT_TENSORS, MoEAdapter

# int4 and offload are arithmetic only: no code path holds frozen experts that way yet.
Precision = Literal["float32", "bfloat16", "int8", "int4", "offload"]
GroupPrecision = Literal["float32", "bfloat16"]
Optimizer = Literal["adamw", "adamw8bit"]
BYTES_PER_PARAM: dict[str, float] = {
    "float32": 4.0,
    "bfloat16": 2.0,
    "int4": 0.5 + 2.0 / 64,  # 4-bit with a bf16 scale per 64 values (nf4 / int4 weight-only)
    "offload": 0.0,  # held in host memory, streamed in per layer
}
INT8_SCALE_BYTES = 4  # one fp32 absmax scale per output row (`Int8Experts`)
ADAMW8BIT_BLOCK = 256  # torchao AdamW8bit: one fp32 scale per 256 values of each moment
GIB = 1 << 30


class MemoryPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: Literal["full_routing", "partial"]
    shared_precision: Precision
    frozen_precision: Precision
    group_precision: GroupPrecision
    optimizer: Optimizer
    checkpointing: bool
    batch_tokens: int
    shared_params: int
    frozen_expert_params: int
    trained_params: int
    shared_bytes: int
    frozen_bytes: int
    trained_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    checkpointed_activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return (
            self.shared_bytes
            + self.frozen_bytes
            + self.trained_bytes
            + self.gradient_bytes
            + self.optimizer_bytes
            + self.activation_bytes
        )

    def fits(self, memory_gib: float) -> bool:
        return self.total_bytes <= memory_gib * GIB

    def lines(self, memory_gib: float) -> list[str]:
        verdict = "fits" if self.fits(memory_gib) else "does NOT fit"
        moments = {"adamw": self.group_precision, "adamw8bit": "8-bit"}[self.optimizer]
        act = "checkpointed per layer" if self.checkpointing else "all layers kept"
        out = [
            f"mode {self.mode}, batch {self.batch_tokens} tokens",
            f"shared weights    {self.shared_params / 1e6:10.1f} M params @ {self.shared_precision:8s} {self.shared_bytes / GIB:8.2f} GiB",
            f"frozen experts    {self.frozen_expert_params / 1e6:10.1f} M params @ {self.frozen_precision:8s} {self.frozen_bytes / GIB:8.2f} GiB",
            f"trained (group)   {self.trained_params / 1e6:10.1f} M params @ {self.group_precision:8s} {self.trained_bytes / GIB:8.2f} GiB",
            f"gradients         {'':21s}{self.group_precision:8s} {self.gradient_bytes / GIB:8.2f} GiB",
            f"{self.optimizer:10s} moments {'':21s}{moments:8s} {self.optimizer_bytes / GIB:8.2f} GiB",
            f"activations       {act:33s} {self.activation_bytes / GIB:8.2f} GiB",
            f"total             {'':33s} {self.total_bytes / GIB:8.2f} GiB: {verdict} in {memory_gib:g} GiB",
        ]
        if not self.checkpointing and not self.fits(memory_gib):
            saved = self.activation_bytes - self.checkpointed_activation_bytes
            out.append(
                f"with miner.activation_checkpointing=true: {(self.total_bytes - saved) / GIB:.2f} GiB"
            )
        return out


def meta_model(config: PretrainedConfig) -> torch.nn.Module:
    """The model's module tree on the meta device: shapes without memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _activation_parts(config: PretrainedConfig, compute_bytes: int) -> tuple[int, int, int]:
    """Per token: (one decoder layer's saved activations, what a checkpointed layer keeps, the
    head's)."""
    h = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q = config.num_attention_heads * head_dim
    kv = config.num_key_value_heads * head_dim
    num_experts = getattr(config, "num_experts", None) or config.num_local_experts
    k = config.num_experts_per_tok
    inter = getattr(config, "moe_intermediate_size", None) or config.intermediate_size
    attention = 2 * h + 5 * q + 4 * kv
    moe = 2 * h + k * (3 * h + 4 * inter)
    router = 2 * num_experts * 4
    per_layer = (attention + moe) * compute_bytes + router
    kept = h * compute_bytes + num_experts * 4
    head = 2 * h * compute_bytes + config.vocab_size * (compute_bytes + 8)
    return per_layer, kept, head


def activation_bytes_per_token(
    config: PretrainedConfig, *, compute_bytes: int, checkpointing: bool = False
) -> int:
    per_layer, kept, head = _activation_parts(config, compute_bytes)
    if checkpointing:
        return config.num_hidden_layers * kept + per_layer + head
    return config.num_hidden_layers * per_layer + head


def _frozen_bytes(adapter: MoEAdapter, precision: Precision) -> int:
    tensors = [getattr(layer.experts, t) for layer in adapter.layers for t in EXPERT_TENSORS]
    if precision == "int8":
        return sum(w.numel() + w.numel() // w.shape[-1] * INT8_SCALE_BYTES for w in tensors)
    return int(sum(w.numel() for w in tensors) * BYTES_PER_PARAM[precision])


def _optimizer_bytes(trained: int, group_precision: GroupPrecision, optimizer: Optimizer) -> int:
    if optimizer == "adamw8bit":
        return int(2 * trained * (1 + 4 / ADAMW8BIT_BLOCK))
    return 2 * trained * int(BYTES_PER_PARAM[group_precision])


def plan_memory(
    config: PretrainedConfig,
    *,
    group_size: int | dict[int, int],
    mode: Literal["full_routing", "partial"] = "full_routing",
    shared_precision: Precision = "bfloat16",
    frozen_precision: Precision = "bfloat16",
    group_precision: GroupPrecision = "float32",
    optimizer: Optimizer = "adamw",
    checkpointing: bool = False,
    batch_size: int,
    seq_len: int,
    compute_bytes: int = 2,
) -> MemoryPlan:
    """Peak memory of one miner, from the config alone. `group_size`: experts per MoE layer."""
    model = meta_model(config)
    adapter = MoEAdapter(model)
    sizes = {
        layer.index: group_size if isinstance(group_size, int) else group_size[layer.index]
        for layer in adapter.layers
    }
    per_expert = {
        layer.index: sum(getattr(layer.experts, t)[0].numel() for t in EXPERT_TENSORS)
        for layer in adapter.layers
    }
    all_experts = sum(per_expert[i] * adapter.num_experts for i in per_expert)
    trained = sum(per_expert[i] * sizes[i] for i in per_expert)
    shared = sum(p.numel() for p in model.parameters()) - all_experts
    full = mode == "full_routing"
    tokens = batch_size * seq_len
    group_bytes = int(BYTES_PER_PARAM[group_precision])

    def activations(ckpt: bool) -> int:
        per_token = activation_bytes_per_token(
            config, compute_bytes=compute_bytes, checkpointing=ckpt
        )
        return tokens * per_token

    return MemoryPlan(
        mode=mode,
        shared_precision=shared_precision,
        frozen_precision=frozen_precision,
        group_precision=group_precision,
        optimizer=optimizer,
        checkpointing=checkpointing,
        batch_tokens=tokens,
        shared_params=shared,
        frozen_expert_params=all_experts if full else 0,
        trained_params=trained,
        shared_bytes=int(shared * BYTES_PER_PARAM[shared_precision]),
        frozen_bytes=_frozen_bytes(adapter, frozen_precision) if full else 0,
        trained_bytes=group_bytes * trained,
        gradient_bytes=group_bytes * trained,
        optimizer_bytes=_optimizer_bytes(trained, group_precision, optimizer),
        activation_bytes=activations(checkpointing),
        checkpointed_activation_bytes=activations(True),
    )
