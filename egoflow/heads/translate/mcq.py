"""EgoMCQ with VideoTranslate: rank the candidate clips of an item by the likelihood of its query text.

Predict-only (``egoflow predict translate-egomcq --run RUN``) with any VideoTranslate run: each item's clips go
through the encoder together and the decoder scores the query once per clip (after the narration prefix: the
query is a narration). A candidate set that is empty or lists the same clip twice is an error naming the item.
"""
from __future__ import annotations

import numpy as np

from egoflow.heads.translate.common import eval_mode
from egoflow.heads.translate.data import Clip, Collate, load_videos, make_clipset
from egoflow.heads.translate.rank import candidate_scores, pad_ids
from egoflow.heads.translate.text import TranslateInputError, encode, load_tokenizer


def read_items(annotations):
    if isinstance(annotations, (list, tuple)):
        items, source = list(annotations), "EgoMCQ items (records)"
    else:
        from egoflow.datasets.egomcq import load_egomcq
        items, source = load_egomcq(annotations), str(annotations)
    if not items:
        raise TranslateInputError(f"{source}: no items")
    for it in items:
        if not it.choices:
            raise TranslateInputError(f"{source}: item {it.item_id}: empty candidate set")
        seen = [(c.video_uid, c.start_sec, c.end_sec) for c in it.choices]
        dup = next((i for i, c in enumerate(seen) if c in seen[:i]), None)
        if dup is not None:
            raise TranslateInputError(f"{source}: item {it.item_id}: choice {dup} repeats choice "
                                      f"{seen.index(seen[dup])} ({seen[dup][0]} {seen[dup][1]}-{seen[dup][2]} s)")
    return items, source


class MCQEvaluation:
    metric, mode = "Inter-video", "max"

    def __init__(self, items, data, tok, batch_size: int = 32):
        self.items, self.data, self.tok, self.batch_size = items, data, tok, batch_size

    @eval_mode
    def predict(self, model, decode) -> dict:
        device = next(model.parameters()).device
        collate, out, at = Collate(self.data, model.cfg.pad_id), {}, 0
        for it in self.items:
            idx = list(range(at, at + len(it.choices)))
            at += len(it.choices)
            batch = {k: v.to(device) for k, v in collate(idx).items()}
            ids, m = pad_ids(encode(self.tok, [it.query], model.cfg.max_narration_len)[0], model.cfg.pad_id, device)
            out[it.item_id] = candidate_scores(model, batch, ids, m)[:, 0].float().cpu().numpy()
        return out

    def score(self, records) -> dict[str, float]:
        from egoflow.evaluate.retrieval import egomcq_accuracy
        width = max(len(it.choices) for it in self.items)
        scores = np.full((len(self.items), width), -np.inf)
        for i, it in enumerate(self.items):
            scores[i, : len(it.choices)] = records[it.item_id]
        rep = egomcq_accuracy(scores, [it.answer for it in self.items], [it.type for it in self.items])
        return {k: float(v) for k, v in rep.items() if isinstance(v, (int, float)) and not np.isnan(v)}


def build_mcq(store, feature_set, items, source, tok, cfg) -> MCQEvaluation:
    videos = load_videos(store, feature_set, {c.video_uid for it in items for c in it.choices}, source)
    clips = [Clip(c.video_uid, c.start_sec, c.end_sec, "narration", "", f"{it.item_id}/{j}")
             for it in items for j, c in enumerate(it.choices)]
    return MCQEvaluation(items, make_clipset(clips, videos, tok, cfg), tok)


def task(inputs, overrides):
    raise TranslateInputError("translate-egomcq only predicts: train `translate` on narrations, then "
                              "`egoflow predict translate-egomcq --run RUN --annotations egomcq.json`")


def predictor(inputs, cfg) -> MCQEvaluation:
    items, source = read_items(inputs.annotations)
    return build_mcq(inputs.store, inputs.feature_set, items, source, load_tokenizer(cfg.tokenizer), cfg)



