"""Domain corpora: what each expert group trains on.

Local sources need nothing but a Python installation: the standard library's source code (code),
the prose of `pydoc_data` (English) and generated arithmetic (math). Real runs name a Hugging Face
dataset, read through `datasets` from local files or the Hub.
"""

import random
import sysconfig
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StdlibCode(_Source):
    """Top-level standard-library modules, one document per chunk of whole lines."""

    kind: Literal["stdlib_code"] = "stdlib_code"
    max_files: int = 200
    chunk_chars: int = 2000


class PydocProse(_Source):
    """The topic texts `help()` shows, one document per group of paragraphs."""

    kind: Literal["pydoc_prose"] = "pydoc_prose"
    chunk_chars: int = 1500


class Arithmetic(_Source):
    """Generated worked sums and products; the seed makes the corpus identical everywhere."""

    kind: Literal["arithmetic"] = "arithmetic"
    num_documents: int = 3000
    problems_per_document: int = 12
    seed: int = 0


class HFDataset(_Source):
    """A Hugging Face dataset (builder name or local data files), one document per row."""

    kind: Literal["hf_dataset"] = "hf_dataset"
    path: str
    data_files: list[str] | str | None = None
    split: str = "train"
    text_field: str = "text"
    max_documents: int | None = None
    cache_dir: Path | None = None


Source = Annotated[StdlibCode | PydocProse | Arithmetic | HFDataset, Field(discriminator="kind")]


def _chunks(parts: list[str], chunk_chars: int, sep: str) -> list[str]:
    """Join consecutive parts until a chunk reaches `chunk_chars`."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for part in parts:
        current.append(part)
        size += len(part) + len(sep)
        if size >= chunk_chars:
            out.append(sep.join(current))
            current, size = [], 0
    if current:
        out.append(sep.join(current))
    return out


def _stdlib_code(src: StdlibCode) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    for path in sorted(root.glob("*.py"))[: src.max_files]:
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.extend(_chunks(text.splitlines(), src.chunk_chars, "\n"))
    return docs


def _pydoc_prose(src: PydocProse) -> list[str]:
    from pydoc_data.topics import topics

    paragraphs = [
        p.strip() for name in sorted(topics) for p in topics[name].split("\n\n") if p.strip()
    ]
    return _chunks(paragraphs, src.chunk_chars, "\n\n")


def _arithmetic(src: Arithmetic) -> list[str]:
    rng = random.Random(src.seed)
    docs = []
    for _ in range(src.num_documents):
        lines = []
        for _ in range(src.problems_per_document):
            a, b = rng.randint(0, 999), rng.randint(0, 999)
            op = rng.choice("+-*")
            result = a + b if op == "+" else a - b if op == "-" else a * b
            lines.append(f"{a} {op} {b} = {result}")
        docs.append("\n".join(lines))
    return docs


def _hf_dataset(src: HFDataset) -> list[str]:
    import datasets

    ds = datasets.load_dataset(
        src.path,
        data_files=src.data_files,
        split=src.split,
        cache_dir=str(src.cache_dir) if src.cache_dir else None,
    )
    if src.text_field not in ds.column_names:
        raise ValueError(
            f"dataset {src.path!r} has no column {src.text_field!r}: {ds.column_names}"
        )
    if src.max_documents is not None:
        ds = ds.select(range(min(src.max_documents, len(ds))))
    return [t for t in ds[src.text_field] if isinstance(t, str) and t]


def load_documents(source: StdlibCode | PydocProse | Arithmetic | HFDataset) -> list[str]:
    loaders = {
        "stdlib_code": _stdlib_code,
        "pydoc_prose": _pydoc_prose,
        "arithmetic": _arithmetic,
        "hf_dataset": _hf_dataset,
    }
    return loaders[source.kind](source)
