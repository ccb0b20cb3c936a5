"""RoBERTa byte-level BPE tokenizer from a local folder (``vocab.json`` + ``merges.txt``, as in roberta-base).

Same ids as ``transformers``' roberta-base tokenizer: ``<s> tokens </s>`` then ``<pad>`` up to the longest
string of the batch (``padding=True, truncation=True`` as EgoVLPv2 calls it), truncated to ``max_length``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from egoflow.checks import InputFileError, one_line, read_json, read_text
from egoflow.extract.fused.config import FusedModelError

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


class _TokenizerFileError(InputFileError, FusedModelError):
    """A tokenizer file that is not valid UTF-8 / JSON (named with its line)."""


class RobertaBPE:
    def __init__(self, folder: str | Path, max_length: int = 512):
        from tokenizers import ByteLevelBPETokenizer
        from tokenizers.processors import RobertaProcessing

        d = Path(folder).expanduser()
        missing = [f for f in ("vocab.json", "merges.txt") if not (d / f).is_file()]
        if missing:
            raise FusedModelError(f"tokenizer folder {d}: missing {', '.join(missing)} (RoBERTa BPE needs "
                                  "vocab.json and merges.txt, e.g. from the roberta-base repository)")
        vocab = read_json(d / "vocab.json", _TokenizerFileError)
        if not isinstance(vocab, dict) or not all(isinstance(v, int) and 0 <= v < 2 ** 31 for v in vocab.values()):
            raise FusedModelError(f"{d / 'vocab.json'}: not a vocabulary (expected {{token: id}} with small ids)")
        absent = [s for s in SPECIALS if s not in vocab]
        if absent:
            raise FusedModelError(f"{d / 'vocab.json'}: lacks the RoBERTa special tokens {', '.join(absent)}")
        read_text(d / "merges.txt", _TokenizerFileError)  # UTF-8, else one line naming it
        try:
            self.tok = ByteLevelBPETokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
        except Exception as e:  # noqa: BLE001 - the Rust tokenizers library raises its own exception types
            raise FusedModelError(f"tokenizer folder {d}: vocab.json/merges.txt not readable as RoBERTa BPE "
                                  f"({one_line(e)})") from None
        self.tok.post_processor = RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]))
        self.tok.enable_truncation(max_length)
        self.pad_id, self.mask_id = vocab["<pad>"], vocab["<mask>"]
        self.vocab_size = len(vocab)
        self.folder = d

    def __call__(self, strings: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """strings -> (ids ``[N, L]`` long, mask ``[N, L]`` long), L = longest in the batch."""
        return encode_padded(self.tok, strings, self.pad_id)


def encode_padded(tok, strings: list[str], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``tokenizers`` tokenizer's batch as (ids ``[N, L]``, mask ``[N, L]``) long, padded with ``pad_id`` to
    the longest string of the batch (the RoBERTa BPE and the EgoVLP WordPiece loaders alike)."""
    enc = tok.encode_batch(list(strings))
    L = max((len(e.ids) for e in enc), default=0)
    ids = torch.full((len(enc), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(enc), L), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, :len(e.ids)] = torch.tensor(e.ids)
        mask[i, :len(e.ids)] = 1
    return ids, mask


def write_tiny_vocab(folder: str | Path, words: list[str]) -> Path:
    """A toy RoBERTa vocab/merges for tests and the demo: specials, the byte alphabet and a few merges (so that
    the given words become single tokens). Not a real vocabulary."""
    from tokenizers import ByteLevelBPETokenizer

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(words)] * 4, vocab_size=len(words) * 8 + 300, min_frequency=1,
                            special_tokens=list(SPECIALS), show_progress=False)
    bpe.save_model(str(d))
    return d
