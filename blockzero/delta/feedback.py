"""Miner-side error feedback for sparse codecs.

A top-k submission carries a few percent of the delta. What it did not carry (the residual,
`delta + residual - decoded`) is added to the next cycle's delta before encoding, so over cycles
the sum of what was sent tracks the sum of the deltas and the residual stays bounded, instead of
the small coordinates being dropped for ever (SparseLoCo, Templar).

A residual only means something on top of the model it was computed against, so it is stored
with its group and base revision and reused only for the same group on the same base, or on a
model whose manifest names that base as its parent (the merge of the cycle it was sent in).
Anything else (another group, a republished or rolled-back model, a skipped cycle) starts afresh.
"""

import logging
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from blockzero.atomic import atomic_path
from blockzero.delta.codecs import Codec, make_codec
from blockzero.delta.submission import SubmissionMeta
from blockzero.model.group_rows import GroupTensors

logger = logging.getLogger(__name__)


def encode_with_feedback(
    codec: Codec, delta: GroupTensors, residual: GroupTensors
) -> tuple[dict[str, torch.Tensor], GroupTensors, GroupTensors]:
    """(encoded parts, what they decode to, the new residual) for `delta` plus `residual`."""
    target = {
        k: v.to(torch.float32) + residual[k] if k in residual else v for k, v in delta.items()
    }
    encoded = codec.encode(target)
    decoded = codec.decode(encoded, {k: tuple(v.shape) for k, v in target.items()})
    return encoded, decoded, {k: target[k].to(torch.float32) - decoded[k] for k in target}


class ErrorFeedback:
    """The residual of the last sparse submission, as one safetensors file in the work dir."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(
        self, *, group: int, base_revision: str, parent_revision: str | None, like: GroupTensors
    ) -> GroupTensors:
        """The stored residual if it carries over to this model and group, else nothing."""
        if not self.path.exists():
            return {}
        try:
            with safe_open(str(self.path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError) as e:
            logger.warning("residual %s is unreadable (%s); starting afresh", self.path, e)
            return {}
        same_group = meta.get("group") == str(group)
        lineage = meta.get("base_revision") in (base_revision, parent_revision)
        shapes = {k: v.shape for k, v in tensors.items()} == {k: v.shape for k, v in like.items()}
        if not (same_group and lineage and shapes):
            logger.info("error-feedback residual reset (group or base model changed)")
            return {}
        return tensors

    def save(self, residual: GroupTensors, *, group: int, base_revision: str) -> None:
        if not all(torch.isfinite(t).all() for t in residual.values()):
            self.path.unlink(missing_ok=True)
            return
        meta = {"group": str(group), "base_revision": base_revision}
        with atomic_path(self.path) as tmp:
            save_file({k: v.contiguous() for k, v in residual.items()}, str(tmp), metadata=meta)

    def add(
        self, delta: GroupTensors, meta: SubmissionMeta, *, parent_revision: str | None
    ) -> GroupTensors:
        """`delta` plus the carried residual when the meta's codec is sparse: what to submit."""
        if not make_codec(meta.codec, meta.density).sparse:
            return delta
        residual = self.load(
            group=meta.group,
            base_revision=meta.base_revision,
            parent_revision=parent_revision,
            like=delta,
        )
        return {
            k: v.to(torch.float32) + residual[k] if k in residual else v for k, v in delta.items()
        }

    def keep(self, submitted: GroupTensors, meta: SubmissionMeta) -> None:
        """After the file is written: keep what it did not carry (encoding is deterministic, so
        re-encoding gives exactly the file's values); dense codecs keep nothing."""
        codec = make_codec(meta.codec, meta.density)
        if not codec.sparse:
            self.path.unlink(missing_ok=True)
            return
        _, _, residual = encode_with_feedback(codec, submitted, {})
        self.save(residual, group=meta.group, base_revision=meta.base_revision)
