"""Dishonest miners, for the local-subnet demo and validator tests. Never used by default.

Each strategy turns the honest pseudo-gradient into what a cheater would submit. The file stays
well-formed (right keys, shapes, metadata, commit-reveal followed), so only the validator's
scoring can catch it:

| strategy     | submits                                                      | caught by            |
|--------------|--------------------------------------------------------------|----------------------|
| `honest`     | the trained delta                                            | -                    |
| `zero`       | zeros (free-riding)                                          | no improvement       |
| `noise`      | Gaussian noise with the honest delta's global norm           | no improvement       |
| `sign_flip`  | minus the delta (sabotage)                                   | loss gets worse      |
| `scale`      | the delta times 100                                          | norm bound / loss    |
| `nan`        | the delta with a NaN in it                                   | non-finite check     |
| `copy`       | another miner's latest revealed file (from an earlier cycle) | stale / duplicate    |
| `copy_noise` | that copy plus 1% noise, to dodge exact-duplicate checks     | stale / no gain      |

Copying the current cycle is impossible by design: others reveal only after the commit phase,
when the copier's own hash is already fixed. So a copier can only resubmit an older delta.
"""

import logging
import tempfile
from enum import StrEnum
from pathlib import Path

import torch
from safetensors.torch import load_file

from blockzero.chain.port import Chain
from blockzero.delta.pseudo_gradient import global_norm
from blockzero.hub.errors import HubError
from blockzero.hub.port import Hub
from blockzero.model.group_rows import GroupTensors
from blockzero.protocol.commitments import RevealCommitment, decode
from blockzero.protocol.errors import CommitmentRejected

logger = logging.getLogger(__name__)

SCALE_FACTOR = 100.0
COPY_NOISE_FRACTION = 0.01
SUBMISSION_FILE = "delta.safetensors"
MAX_COPY_BYTES = 1 << 30


class Strategy(StrEnum):
    HONEST = "honest"
    ZERO = "zero"
    NOISE = "noise"
    SIGN_FLIP = "sign_flip"
    SCALE = "scale"
    NAN = "nan"
    COPY = "copy"
    COPY_NOISE = "copy_noise"

    @property
    def copies(self) -> bool:
        return self in (Strategy.COPY, Strategy.COPY_NOISE)


def _noise_like(delta: GroupTensors, norm: float, gen: torch.Generator) -> GroupTensors:
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in delta.items()}
    scale = norm / max(global_norm(noise), 1e-12)
    return {k: v * scale for k, v in noise.items()}


def apply_strategy(
    strategy: Strategy, honest: GroupTensors, *, copied: GroupTensors | None, seed: int
) -> GroupTensors:
    """What a miner following `strategy` submits instead of `honest`.

    A copier with nothing usable to copy (`copied` None) submits zeros: it did no work.
    """
    gen = torch.Generator().manual_seed(seed)
    if strategy is Strategy.HONEST:
        return honest
    if strategy is Strategy.ZERO:
        return {k: torch.zeros_like(v) for k, v in honest.items()}
    if strategy is Strategy.NOISE:
        return _noise_like(honest, global_norm(honest), gen)
    if strategy is Strategy.SIGN_FLIP:
        return {k: -v for k, v in honest.items()}
    if strategy is Strategy.SCALE:
        return {k: v * SCALE_FACTOR for k, v in honest.items()}
    if strategy is Strategy.NAN:
        out = {k: v.clone() for k, v in honest.items()}
        first = next(iter(sorted(out)))
        out[first].view(-1)[0] = float("nan")
        return out
    if copied is None:
        return {k: torch.zeros_like(v) for k, v in honest.items()}
    if strategy is Strategy.COPY:
        return copied
    noise = _noise_like(copied, COPY_NOISE_FRACTION * global_norm(copied), gen)
    return {k: v + noise[k] for k, v in copied.items()}


def latest_revealed_delta(
    chain: Chain, hub: Hub, *, own_hotkey: str, source: str | None, like: GroupTensors
) -> GroupTensors | None:
    """The tensors of `source`'s (or any other miner's) latest revealed file, if they fit ours."""
    for hotkey, entry in sorted(chain.commitments().items()):
        if hotkey == own_hotkey or (source is not None and hotkey != source):
            continue
        try:
            reveal = decode(entry.data)
        except CommitmentRejected:
            continue
        if not isinstance(reveal, RevealCommitment):
            continue
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = hub.download(
                    reveal.repo_id,
                    SUBMISSION_FILE,
                    reveal.revision,
                    max_bytes=MAX_COPY_BYTES,
                    timeout_s=60.0,
                    dest_dir=Path(tmp),
                )
                tensors = {k: v.float() for k, v in load_file(str(path)).items()}
        except HubError as e:
            logger.warning("copy: cannot fetch %s's file: %s", hotkey[:8], e)
            continue
        if {k: v.shape for k, v in tensors.items()} == {k: v.shape for k, v in like.items()}:
            logger.info("copy: using %s's delta of cycle %d", hotkey[:8], reveal.cycle)
            return tensors
    logger.warning("copy: no revealed delta of matching shape to copy")
    return None
