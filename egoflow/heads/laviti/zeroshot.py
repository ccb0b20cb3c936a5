"""Zero-shot use of a pretrained LAVITI model: NLQ moment retrieval and CharadesEgo classification.

Nothing here trains. A clip (or video) is cut into the same chunks as in pretraining, every chunk yields N
moments (start, end, visual embedding), and a text embedding ranks them by cosine similarity.
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import torch

from egoflow.formats import temporal_iou
from egoflow.heads.laviti.data import Chunk, LavitiDataError, chunk_windows, collate, cut
from egoflow.heads.train import move_to

log = logging.getLogger(__name__)


def unit(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def span_chunks(uid: str, feats: np.ndarray, times: np.ndarray, duration: float, chunk_s: float) -> list[Chunk]:
    """Chunks of one clip/video for prediction (``times`` in clip time). Unlike training, a chunk shorter than
    one token is kept (the model pads it to one token); a span without any frame is an error."""
    if len(times) == 0:
        raise LavitiDataError(f"{uid}: no feature frame inside its [0, {duration:.2f}] s span")
    wins = chunk_windows(duration, chunk_s)
    out = []
    for w, (s, e) in enumerate(wins):
        f, t = cut(feats, times, s, e, last=w == len(wins) - 1)
        if len(t):
            out.append(Chunk(uid, s, e - s, f, t))
    return out


@torch.no_grad()
def predict_moments(model, decode, chunks: list[Chunk], batch_size: int = 8) -> dict:
    """All moments of ``chunks`` -> ``{"start": [n], "end": [n], "visual": [n, E]}`` (n = N * #chunks)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = []
    for i in range(0, len(chunks), batch_size):
        batch = move_to(collate(chunks[i:i + batch_size]), device)
        parts += decode(model(batch), batch)
    model.train(was_training)
    return {k: np.concatenate([p[k] for p in parts]) for k in ("start", "end", "visual")}


def rank_moments(moments: dict, query: np.ndarray, top_k: int, nms_iou: float) -> list[list[float]]:
    """Top-``top_k`` windows ``[[start, end]]`` by cosine similarity to ``query [E]``.

    Greedy temporal NMS at ``nms_iou`` drops windows overlapping a better one (several queries often predict
    the same moment); if fewer than ``top_k`` survive, suppressed windows fill up in rank order. Two
    zero-length windows at one time are the same moment (IoU 1). ``nms_iou <= 0``: no NMS (the paper's plain
    ranking).
    """
    scores = moments["visual"] @ unit(query)
    order = np.argsort(-scores, kind="stable")
    wins = np.stack([moments["start"], moments["end"]], 1)[order]
    kept, rest = [], []
    for w in wins:
        if len(kept) < top_k and (nms_iou <= 0 or not kept
                                  or temporal_iou(w, np.array(kept), empty=1.0).max() < nms_iou):
            kept.append(w)
        elif len(rest) < top_k:
            rest.append(w)
    kept += rest[:top_k - len(kept)]
    return [[round(float(s), 3), round(float(e), 3)] for s, e in kept]


def clip_features(videos: dict, q, cfg) -> list[Chunk]:
    """Chunks of an NLQ query's clip cut from its video (clip time); a clip falling between two frames uses
    the frame nearest its centre (as the VSLNet loader does)."""
    vf = videos[q.video_uid]
    lo, hi = q.clip_video_start_sec, q.clip_video_end_sec
    keep = (vf.times >= lo) & (vf.times <= hi)
    if not keep.any():
        log.warning("clip %s of video %s holds no frame; using the frame nearest its centre", q.clip_uid, q.video_uid)
        keep = np.zeros(len(vf.times), bool)
        keep[int(np.argmin(np.abs(vf.times - (lo + hi) / 2)))] = True
    times = np.clip(vf.times[keep] - lo, 0.0, q.clip_duration)
    return span_chunks(q.clip_uid, vf.feats[keep], times, q.clip_duration, cfg.chunk_s)


def nlq_zero_shot(model, decode, videos: dict, queries: list, query_emb: dict, cfg) -> list[dict]:
    """Official NLQ result entries for ``queries`` (records) from ``videos`` (uid -> VideoFeatures); no NLQ
    training. Times are clip seconds, best first.

    ``query_emb``: query string -> pooled text embedding ``[E]``.
    """
    by_clip = defaultdict(list)
    for q in queries:
        by_clip[q.clip_uid].append(q)
    results = []
    for clip_uid, qs in by_clip.items():
        moments = predict_moments(model, decode, clip_features(videos, qs[0], cfg))
        for q in qs:
            results.append({"clip_uid": clip_uid, "annotation_uid": q.annotation_uid, "query_idx": q.query_idx,
                            "predicted_times": rank_moments(moments, query_emb[q.query], cfg.top_k, cfg.nms_iou)})
    return results


def charades_scores(model, decode, videos: list, class_emb: np.ndarray, cfg) -> np.ndarray:
    """Zero-shot CharadesEgo scores ``[V, C]``: for video v and class c, the mean cosine similarity between all
    of v's output visual embeddings (every query of every chunk) and the class-name embedding ``class_emb [C, E]``.

    ``videos``: VideoFeatures (or objects with ``feats``, ``times``, ``attrs``) in the order of the labels.
    """
    cls = unit(class_emb)
    out = np.zeros((len(videos), len(cls)), np.float32)
    for i, vf in enumerate(videos):
        chunks = span_chunks(f"video #{i}", vf.feats, vf.times, vf.duration, cfg.chunk_s)
        vis = predict_moments(model, decode, chunks)["visual"]
        out[i] = (vis @ cls.T).mean(0)
    return out
