"""Per-family adapters: where each MoE layer's fused expert tensors and router live.

transformers 5 stores a layer's routed experts as two fused 3-D parameters
(`mlp.experts.gate_up_proj [E, 2I, H]`, `mlp.experts.down_proj [E, H, I]`) and the router as
`mlp.gate.weight [E, H]`, so an expert group is "rows `ids` of dim 0" of those tensors. The
families below share that layout; they differ in the config field holding the expert count and in
whether top-k routing weights are renormalised (which decides whether a partial model routes
like the full one).
"""

from dataclasses import dataclass

from torch import nn
from transformers import PretrainedConfig

EXPERT_TENSORS = ("gate_up_proj", "down_proj")


class UnsupportedModelError(ValueError):
    """The model's family has no adapter, so BlockZero cannot tell where its experts are."""


@dataclass(frozen=True)
class MoEFamily:
    model_type: str
    expert_count_field: str
    always_renormalizes: bool = False

    def renormalizes_topk(self, config: PretrainedConfig) -> bool:
        return self.always_renormalizes or bool(getattr(config, "norm_topk_prob", False))


FAMILIES: dict[str, MoEFamily] = {
    f.model_type: f
    for f in (
        MoEFamily("qwen3_moe", "num_experts"),
        MoEFamily("olmoe", "num_experts"),
        MoEFamily("qwen2_moe", "num_experts"),
        MoEFamily("mixtral", "num_local_experts", always_renormalizes=True),
    )
}


@dataclass(frozen=True)
class MoELayer:
    """One decoder layer's sparse block: `prefix` is its state-dict prefix (`model.layers.3.mlp`)."""

    index: int
    prefix: str
    block: nn.Module

    @property
    def experts(self) -> nn.Module:
        return self.block.experts

    @property
    def router(self) -> nn.Module:
        return self.block.gate

    def expert_tensor_name(self, tensor: str) -> str:
        return f"{self.prefix}.experts.{tensor}"


def family_of(config: PretrainedConfig) -> MoEFamily:
    family = FAMILIES.get(config.model_type)
    if family is None:
        raise UnsupportedModelError(
            f"model family {config.model_type!r} is not supported; supported: {sorted(FAMILIES)}"
        )
    return family


class MoEAdapter:
    """Finds the MoE layers of a loaded causal LM of a supported family."""

    def __init__(self, model: nn.Module) -> None:
        self.config: PretrainedConfig = model.config
        self.family = family_of(self.config)
        self.layers = [
            MoELayer(index=i, prefix=f"model.layers.{i}.mlp", block=layer.mlp)
            for i, layer in enumerate(model.model.layers)
            if hasattr(layer.mlp, "experts") and hasattr(layer.mlp, "gate")
        ]
        if not self.layers:
            raise UnsupportedModelError(f"{type(model).__name__} has no routed-expert layers")

    @property
    def num_experts(self) -> int:
        return int(getattr(self.config, self.family.expert_count_field))

    @property
    def top_k(self) -> int:
        return int(self.config.num_experts_per_tok)

    @property
    def moe_layer_indices(self) -> tuple[int, ...]:
        return tuple(layer.index for layer in self.layers)

    def layer(self, index: int) -> MoELayer:
        for layer in self.layers:
            if layer.index == index:
                return layer
        raise KeyError(f"decoder layer {index} is not an MoE layer")
