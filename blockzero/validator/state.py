"""The validator's persistent state, one generation per completed cycle, switched atomically.

A generation directory holds the merged model exactly as it is published (config, shards,
manifest), the outer momentum, `state.json` (cycle, score EMA, which model it was merged from,
whether it was published, the accepted deltas of the last cycles) and those deltas' sketches
(`sketches.safetensors`, for the replay check). It is written whole under a temporary name, fsynced and renamed,
and only then does `CURRENT` (itself replaced atomically) point at it. A kill -9 at any point
leaves `CURRENT` on the previous generation or the new one, never between: after a crash
mid-merge the validator restarts from the model before the merge, so a merge is never applied
twice, and a completed one is never lost. The previous generation is kept for inspection.
"""

import os
import shutil
import tempfile
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from blockzero.atomic import atomic_path, atomic_write_text
from blockzero.delta.outer import load_momentum, save_momentum
from blockzero.model.shards import read_model_dir, write_model_dir
from blockzero.protocol.expert_groups import ExpertGroupRegistry
from blockzero.protocol.manifest import MANIFEST_FILE, ModelManifest, parse_manifest
from blockzero.validator.collect import PastDelta
from blockzero.validator.weights import ScoreBook

CURRENT = "CURRENT"
STATE_FILE = "state.json"
MOMENTUM_FILE = "momentum.safetensors"
SKETCH_FILE = "sketches.safetensors"
MODEL_DIR = "model"


class ValidatorState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cycle: int
    scores: ScoreBook = ScoreBook()
    parent_revision: str | None = None
    has_model: bool = False
    published_revision: str | None = None
    evidence_published: bool = False
    history: list[PastDelta] = []


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def current(self) -> Path | None:
        pointer = self.root / CURRENT
        return self.root / pointer.read_text().strip() if pointer.exists() else None

    def load(self) -> ValidatorState | None:
        gen = self.current()
        return (
            None
            if gen is None
            else ValidatorState.model_validate_json((gen / STATE_FILE).read_bytes())
        )

    def load_model(
        self, registry: ExpertGroupRegistry
    ) -> tuple[PreTrainedModel, ModelManifest, dict[str, torch.Tensor]]:
        gen = self.current()
        assert gen is not None, "no saved generation"
        manifest = parse_manifest((gen / MODEL_DIR / MANIFEST_FILE).read_bytes())
        model = read_model_dir(gen / MODEL_DIR, manifest, registry)
        return model, manifest, load_momentum(gen / MOMENTUM_FILE)

    def load_sketches(self) -> dict[str, torch.Tensor]:
        """The sketches of `history`'s deltas, by `PastDelta.key`."""
        gen = self.current()
        path = None if gen is None else gen / SKETCH_FILE
        return load_file(str(path)) if path is not None and path.exists() else {}

    def model_dir(self) -> Path:
        gen = self.current()
        assert gen is not None, "no saved generation"
        return gen / MODEL_DIR

    def save(
        self,
        state: ValidatorState,
        *,
        model: PreTrainedModel | None = None,
        registry: ExpertGroupRegistry | None = None,
        momentum: dict[str, torch.Tensor] | None = None,
        sketches: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write a whole generation for `state.cycle`, then switch `CURRENT` to it."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"gen-{state.cycle}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        if model is not None:
            assert registry is not None
            write_model_dir(
                tmp / MODEL_DIR,
                model,
                registry,
                cycle=state.cycle,
                parent_revision=state.parent_revision,
            )
            save_momentum(tmp / MOMENTUM_FILE, {k: v.cpu() for k, v in (momentum or {}).items()})
        if sketches:
            with atomic_path(tmp / SKETCH_FILE) as path:
                save_file({k: v.cpu().contiguous() for k, v in sketches.items()}, str(path))
        atomic_write_text(tmp / STATE_FILE, state.model_dump_json())
        _fsync_dir(tmp)
        previous = self.current()
        target = self.root / f"{name}-{tmp.name.rsplit('.', 1)[-1]}"
        os.replace(tmp, target)
        _fsync_dir(self.root)
        atomic_write_text(self.root / CURRENT, target.name)
        self._prune(keep={target.name, previous.name if previous else ""})
        return target

    def update(self, **changes: object) -> ValidatorState:
        """Record what happened after the save (published revision, evidence) in place."""
        gen = self.current()
        assert gen is not None, "no saved generation"
        state = self.load()
        assert state is not None
        new = state.model_copy(update=changes)
        atomic_write_text(gen / STATE_FILE, new.model_dump_json())
        return new

    def _prune(self, keep: set[str]) -> None:
        for path in self.root.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path)
