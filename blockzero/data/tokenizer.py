"""Tokenizers that need no download.

The tiny models use a byte-level tokenizer: four special tokens then one id per UTF-8 byte. It is
built in code, lossless, and identical on every machine. Pretrained models bring their own
`tokenizer.json`, loaded from a local directory.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>")
BYTE_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256


def byte_tokenizer() -> PreTrainedTokenizerFast:
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda s: ord(s))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({s: len(SPECIAL_TOKENS) + i for i, s in enumerate(symbols)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        unk_token="<|unk|>",
    )


def load_tokenizer(name_or_path: str | Path | None) -> PreTrainedTokenizerBase:
    """`None` gives the byte tokenizer; otherwise a local tokenizer directory (never a download)."""
    if name_or_path is None:
        return byte_tokenizer()
    return AutoTokenizer.from_pretrained(str(name_or_path), local_files_only=True)
