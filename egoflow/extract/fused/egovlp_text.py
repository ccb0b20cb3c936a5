"""EgoVLP's text side: a DistilBERT tower and the bert-base-uncased WordPiece tokenizer from a local folder.

Module names follow ``transformers``' DistilBertModel (``embeddings``, ``transformer.layer.N.attention.q_lin``
...) so that the released EgoVLP checkpoint's ``text_model.*`` keys load one to one. DistilBERT layers are
post-LN: ``a = LN(x + Attn(x))``, ``out = LN(a + FFN(a))`` with exact GELU; positions are 0..L-1 (padding does
not shift them, unlike RoBERTa); no token types.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.extract.fused.config import FusedModelError
from egoflow.extract.fused.tokenizer import encode_padded

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class DistilEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.text_width)
        self.LayerNorm = nn.LayerNorm(cfg.text_width, eps=cfg.text_ln_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, L]`` -> ``[B, L, Dt]``."""
        n, most = ids.shape[1], self.position_embeddings.num_embeddings
        if n > most:
            raise ValueError(f"text of {n} tokens is longer than the {most} positions this model has")
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings.weight[:n])


class DistilAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x ``[B, L, D]``, bias additive ``[B, 1, 1, L]`` -> ``[B, L, D]``."""
        B, L, D = x.shape

        def split(t):
            return t.view(B, L, self.heads, D // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q_lin(x)), split(self.k_lin(x)), split(self.v_lin(x)),
                                           attn_mask=bias)
        return self.out_lin(y.transpose(1, 2).reshape(B, L, D))


class DistilFFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class DistilLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg.text_width
        self.attention = DistilAttention(D, cfg.text_heads)
        self.sa_layer_norm = nn.LayerNorm(D, eps=cfg.text_ln_eps)
        self.ffn = DistilFFN(D, cfg.text_mlp)
        self.output_layer_norm = nn.LayerNorm(D, eps=cfg.text_ln_eps)

    def forward(self, x, bias):
        a = self.sa_layer_norm(x + self.attention(x, bias))
        return self.output_layer_norm(a + self.ffn(a))


class DistilBert(nn.Module):
    """Text tower: ids ``[B, L]`` + mask ``[B, L]`` (1 = token) -> last hidden states ``[B, L, Dt]``."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = DistilEmbeddings(cfg)
        self.transformer = nn.Module()
        self.transformer.layer = nn.ModuleList(DistilLayer(cfg) for _ in range(cfg.text_depth))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(ids)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.transformer.layer:
            x = layer(x, bias)
        return x


class WordPiece:
    """bert-base-uncased WordPiece from a folder with ``vocab.txt`` (e.g. distilbert-base-uncased's).

    Same ids as the reference's ``AutoTokenizer("distilbert-base-uncased")(..., padding=True, truncation=True)``:
    BERT normalisation (lower case and accents stripped unless the folder's tokenizer_config.json says
    ``do_lower_case: false``), ``[CLS] tokens [SEP]``, ``[PAD]`` up to the longest string, truncated to
    ``max_length`` tokens (specials included).
    """

    def __init__(self, folder: str | Path, max_length: int = 512):
        from tokenizers import BertWordPieceTokenizer

        d = Path(folder).expanduser()
        vocab = d / "vocab.txt"
        if not vocab.is_file():
            raise FusedModelError(f"tokenizer folder {d}: missing vocab.txt (DistilBERT WordPiece needs the "
                                  "vocab.txt of distilbert-base-uncased)")
        try:
            words = vocab.read_text(encoding="utf-8").split("\n")  # not splitlines: a token may be \x1c, \x85 ...
        except UnicodeDecodeError as e:
            raise FusedModelError(f"{vocab}: not a UTF-8 vocabulary ({e})") from None
        if words and not words[-1]:
            words.pop()
        index = {w: i for i, w in enumerate(words)}
        absent = [s for s in SPECIALS[:4] if s not in index]
        if absent:
            raise FusedModelError(f"{vocab}: lacks the WordPiece special tokens {', '.join(absent)} "
                                  "(a RoBERTa folder? EgoVLP needs distilbert-base-uncased's vocab.txt)")
        lower = True
        conf = d / "tokenizer_config.json"
        if conf.is_file():
            try:
                lower = bool(json.loads(conf.read_text(encoding="utf-8")).get("do_lower_case", True))
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
                raise FusedModelError(f"{conf}: not a JSON object ({e})") from None
        self.tok = BertWordPieceTokenizer(str(vocab), lowercase=lower, clean_text=True, handle_chinese_chars=True,
                                          strip_accents=None)
        self.tok.enable_truncation(max_length)
        self.pad_id = index["[PAD]"]
        self.vocab_size = len(words)
        self.folder = d

    def __call__(self, strings: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """strings -> (ids ``[N, L]`` long, mask ``[N, L]`` long), L = longest in the batch."""
        return encode_padded(self.tok, strings, self.pad_id)
