"""Text side of VideoTranslate: the tokenizer of a run, target encoding with truncation, a T5 folder's checks.

A run always keeps its tokenizer in ``<run>/tokenizer/`` (``save_pretrained`` layout) so that ``predict`` reads
exactly the vocabulary it was trained with. Two sources:

- ``--init T5_FOLDER``: the folder's own tokenizer (a T5 sentencepiece tokenizer as saved by ``transformers``);
- no folder (tests, the demo, offline machines): a small *word-level* tokenizer built with the ``tokenizers``
  library from the training texts, lower-cased, split on whitespace and punctuation, with the special tokens
  ``<pad>`` (0), ``</s>`` (1), ``<unk>`` (2), ``<mask>`` (3) — the T5 order of the first three. Words that a
  later split has and the training texts had not become ``<unk>``: zero-shot class names need to be in the
  tokenizer, so their lists are added when the tokenizer is built (see head.py).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SPECIALS = ("<pad>", "</s>", "<unk>", "<mask>")


class TranslateInputError(ValueError):
    """Input VideoTranslate cannot use (the message names the file, key or folder)."""


def build_word_tokenizer(texts, out_dir):
    """A word-level tokenizer over ``texts`` saved to ``out_dir`` (``save_pretrained``); returns it loaded."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(sorted(set(texts)), trainers.WordLevelTrainer(special_tokens=list(SPECIALS)))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   mask_token="<mask>")
    fast.save_pretrained(str(out_dir))
    return load_tokenizer(out_dir)


def extend_word_tokenizer(tok, texts, out_dir):
    """``tok`` saved to ``out_dir``; a word-level one first gains the words of ``texts`` it lacks, appended after
    its vocabulary so that every old id keeps its meaning (fine-tuning a run on new class names). Returns
    ``(tokenizer, number of words added)``; a T5 (sentencepiece) tokenizer covers any text and is kept as is."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    back = tok.backend_tokenizer
    if not isinstance(back.model, models.WordLevel):
        tok.save_pretrained(str(out_dir))
        return tok, 0
    vocab = dict(back.get_vocab())
    words = {w for t in texts for w, _ in back.pre_tokenizer.pre_tokenize_str(back.normalizer.normalize_str(t))}
    new = sorted(words - set(vocab))
    for w in new:
        vocab[w] = len(vocab)
    ext = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    ext.normalizer, ext.pre_tokenizer = back.normalizer, back.pre_tokenizer
    PreTrainedTokenizerFast(tokenizer_object=ext, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                            mask_token="<mask>").save_pretrained(str(out_dir))
    return load_tokenizer(out_dir), len(new)


def load_tokenizer(folder):
    """The tokenizer saved in ``folder``; a clear error when there is none."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "tokenizer_config.json").exists() and not (folder / "tokenizer.json").exists():
        raise TranslateInputError(f"{folder}: no tokenizer (tokenizer.json / tokenizer_config.json) in this folder")
    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.pad_token_id is None or tok.eos_token_id is None:
        raise TranslateInputError(f"{folder}: the tokenizer has no pad or eos token")
    return tok


def mask_token_id(tok) -> int:
    """``<mask>`` of a word-level tokenizer; T5's first sentinel ``<extra_id_0>`` (its span-mask token) else."""
    for t in (tok.mask_token, "<extra_id_0>"):
        if t is not None and tok.convert_tokens_to_ids(t) not in (None, tok.unk_token_id):
            return int(tok.convert_tokens_to_ids(t))
    return int(tok.unk_token_id)


def encode(tok, texts: list[str], max_len: int) -> tuple[list[list[int]], int]:
    """Token ids of ``texts``, each ending with ``</s>`` and at most ``max_len`` long (longer ones are cut and
    counted, never an error) -> ``(ids, number truncated)``."""
    out, cut = [], 0
    for ids in tok(list(texts), add_special_tokens=False)["input_ids"]:
        if len(ids) > max_len - 1:
            ids, cut = ids[: max_len - 1], cut + 1
        out.append(list(ids) + [tok.eos_token_id])
    return out, cut


def check_candidates(names, where: str) -> list[str]:
    """A class list / candidate set: non-empty, no empty string, no duplicate (named with its index)."""
    names = [str(n).strip() for n in names]
    if not names:
        raise TranslateInputError(f"{where}: empty candidate list")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            raise TranslateInputError(f"{where}: candidate {i} is empty")
        if n.lower() in seen:
            raise TranslateInputError(f"{where}: candidate {i} {n!r} duplicates candidate {seen[n.lower()]} "
                                      "(ranking could not tell them apart)")
        seen[n.lower()] = i
    return names


# the Config fields a T5 folder fixes, and their names in its config.json
T5_FIELDS = {"d_model": "d_model", "d_kv": "d_kv", "d_ff": "d_ff", "num_layers": "num_layers",
             "num_decoder_layers": "num_decoder_layers", "num_heads": "num_heads", "vocab_size": "vocab_size",
             "feed_forward_proj": "feed_forward_proj", "tie_word_embeddings": "tie_word_embeddings"}
T5_DEFAULTS = {"feed_forward_proj": "relu", "tie_word_embeddings": True}  # when a config.json leaves them out


def t5_folder_fields(folder, overrides: dict) -> dict:
    """Config fields of a local T5 folder (``config.json`` of ``save_pretrained``), checked: a T5 model, and no
    ``--set`` override contradicting it (a wrong shape is an error naming the key, never a silent re-init)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.exists():
        raise TranslateInputError(f"{folder}: not a T5 folder (no config.json)")
    try:
        conf = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TranslateInputError(f"{path}: invalid JSON ({e.msg})") from None
    if conf.get("model_type") != "t5":
        raise TranslateInputError(f"{path}: model_type is {conf.get('model_type')!r}, not 't5'")
    if "scale_decoder_outputs" in conf:  # transformers 5 saves v1.1's "untied" flag under this name
        conf["tie_word_embeddings"] = bool(conf["scale_decoder_outputs"])
    out = {}
    for field, key in T5_FIELDS.items():
        if key not in conf:
            if field == "num_decoder_layers":
                conf[key] = conf.get("num_layers")
            elif field in T5_DEFAULTS:
                conf[key] = T5_DEFAULTS[field]
            else:
                raise TranslateInputError(f"{path}: no {key!r}")
        out[field] = conf[key]
        if field in overrides and overrides[field] != conf[key]:
            raise TranslateInputError(f"{path}: {key} is {conf[key]}, but the config sets {field}={overrides[field]}"
                                      " (the weights fix the shape)")
    return out
