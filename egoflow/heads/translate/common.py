"""What every VideoTranslate run shares: the config from the store and ``--init``, the run's tokenizer, loading
``--init`` weights (a T5 folder or an earlier VideoTranslate run), and running a model over a ClipSet.

``--init`` is either a local T5 folder (``save_pretrained`` layout: config.json with ``model_type: t5``, weights,
tokenizer) or a VideoTranslate run directory (its best weights, tokenizer and network shape); without it the
network is randomly initialised with the configured (tiny in tests and the demo) shape and the tokenizer is a
word-level one built from the run's texts.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from egoflow.heads.spec import config_from_dict
from egoflow.heads.train import load_checkpoint, move_to
from egoflow.heads.translate.data import Collate
from egoflow.heads.translate.model import PREFIXES, Config
from egoflow.heads.translate.sizes import size_fields
from egoflow.heads.translate.text import (
    T5_FIELDS,
    TranslateInputError,
    build_word_tokenizer,
    extend_word_tokenizer,
    load_tokenizer,
    mask_token_id,
    t5_folder_fields,
)

log = logging.getLogger(__name__)

# fields that belong to the network / tokenizer: a run used as --init fixes them
INIT_FIELDS = (*T5_FIELDS, "pad_id", "eos_id", "mask_id", "video_dim")


def init_kind(init) -> str | None:
    """``None``, ``"t5"`` (a T5 folder) or ``"run"`` (a VideoTranslate run directory); else a clear error."""
    if init is None:
        return None
    path = Path(init) / "config.json"
    if not path.exists():
        raise TranslateInputError(f"--init {init}: no config.json (expected a T5 folder or a translate run)")
    try:
        conf = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TranslateInputError(f"{path}: invalid JSON ({e.msg})") from None
    if str(conf.get("head", "")).startswith("translate"):
        return "run"
    return "t5"  # t5_folder_fields checks model_type and names what is wrong


def prepare(name: str, inputs, overrides: dict, texts) -> tuple[object, object]:
    """``(cfg, tokenizer)`` of a training run of head ``name``; the tokenizer is saved to ``<out_dir>/tokenizer``."""
    init, out = inputs.options.get("init"), Path(inputs.out_dir)
    if init is not None and out.resolve() == Path(init).resolve():
        raise TranslateInputError(f"--out {out} is the --init folder: the run would overwrite what it starts from")
    kw = size_fields(overrides)  # size=t5-large: its shape fields
    kind, tok_dir = init_kind(init), out / "tokenizer"
    if kind == "run":
        run = json.loads((Path(init) / "config.json").read_text())["head_config"]
        for k in INIT_FIELDS:
            if k in kw and kw[k] != run[k] and k != "vocab_size":
                raise TranslateInputError(f"{init}/config.json: {k} is {run[k]}, but the config sets {k}={kw[k]}")
            kw[k] = run[k]
        for k in ("num_frames", "window_s", "max_narration_len", "max_label_len"):
            kw.setdefault(k, run[k])
        here = Path(init) / "tokenizer"  # the run's own copy (its recorded absolute path may have moved)
        tok, added = extend_word_tokenizer(load_tokenizer(here if here.exists() else run["tokenizer"]),
                                           list(texts) + list(PREFIXES.values()), tok_dir)
        kw["vocab_size"] = max(run["vocab_size"], len(tok))  # new words: new embedding rows (setup_init)
        if added:
            log.info("%d new words added to the tokenizer of %s", added, init)
    elif kind == "t5":
        kw.update(t5_folder_fields(init, kw))
        tok = load_tokenizer(init)
        tok.save_pretrained(str(tok_dir))
    else:
        tok = build_word_tokenizer(list(texts) + list(PREFIXES.values()), tok_dir)
    vocab = len(tok)
    if kind is None:
        kw["vocab_size"] = vocab
    elif vocab > kw["vocab_size"]:
        raise TranslateInputError(f"{init}: the tokenizer has {vocab} tokens but the model's vocab_size is "
                                  f"{kw['vocab_size']}")
    dim = int(inputs.store.feature_set_info(inputs.feature_set)["dim"])
    if kw.get("video_dim", dim) != dim:
        raise TranslateInputError(f"feature set {inputs.feature_set!r} has dim {dim}, but video_dim is "
                                  f"{kw['video_dim']}" + (f" (fixed by --init {init})" if kind == "run" else ""))
    kw.update(video_dim=dim, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id, mask_id=mask_token_id(tok),
              tokenizer=str(tok_dir.resolve()))
    return config_from_dict(Config, kw, name), tok


def setup_init(init, model) -> dict:
    """Load ``--init`` weights into ``model`` (called after the seeded build); returns metrics to record."""
    kind = init_kind(init)
    if kind == "t5":
        from transformers import T5ForConditionalGeneration

        try:
            t5 = T5ForConditionalGeneration.from_pretrained(str(init))
            model.t5.load_state_dict(t5.state_dict())
        except (RuntimeError, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:300]
            raise TranslateInputError(f"--init {init}: the T5 weights do not fit its config ({first})") from None
        log.info("loaded T5 weights from %s", init)
    elif kind == "run":
        state = load_checkpoint(Path(init) / "best.pt")["model"]
        own = model.state_dict()
        keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        for k, v in state.items():  # a grown vocabulary: the old rows of embeddings / lm_head, new ones random
            if k in own and k not in keep and v.shape[1:] == own[k].shape[1:] and v.shape[0] < own[k].shape[0]:
                keep[k] = torch.cat([v, own[k][v.shape[0]:]])
        missing = model.load_state_dict(keep, strict=False).missing_keys
        log.info("loaded %d tensors from %s (new: %s)", len(keep), init, missing)
    return {}


def run_setup(init):
    """A Task.setup that loads ``--init`` (or nothing)."""
    def setup(model, criterion, decode):
        return criterion, setup_init(init, model) if init is not None else {}
    return setup


def batches(model, data, batch_size: int):
    """``(batch on the model's device, clip indices)`` over a ClipSet, in order."""
    device = next(model.parameters()).device
    collate = Collate(data, model.cfg.pad_id)
    for batch in DataLoader(list(range(len(data.clips))), batch_size=batch_size, shuffle=False, collate_fn=collate):
        yield move_to(batch, device), batch["index"].tolist()


def eval_mode(fn):
    """Run ``fn(model, ...)`` with the model in eval mode and no grad; restore its mode after."""
    def wrapper(self, model, *a, **kw):
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(self, model, *a, **kw)
        finally:
            model.train(was)
    return wrapper
