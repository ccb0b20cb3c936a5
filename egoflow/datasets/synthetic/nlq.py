"""Planted NLQ benchmark written straight into a FeatureStore (no video decoding, no weights).

Each clip contains several answer windows, each showing one "concept": its steps carry that concept's visual
prototype on top of a drifting background. Every planted concept is asked about by one query, so the other
planted windows of the same clip are distractors, plus extra unqueried distractor windows. A query's token
features contain a *text* prototype of its concept (a fixed random linear image of the visual prototype, so the
head must learn the cross-modal map) at a template-dependent position among uninformative filler tokens.
Answer windows cover a few percent of the clip, so random windows score a low R@1.

    data = make_synthetic_nlq(store, num_videos=12)
    data.train, data.val        # list[NLQQuery], disjoint videos
    write_nlq_json(data.val, "nlq_val.json")   # official Ego4D NLQ annotation format
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egoflow.datasets.records import NLQQuery
from egoflow.datasets.synthetic.planted import background_video, unit

TEMPLATES = ("where did I see the {}?", "when did I last use the {}?", "what did I do with the {}?",
             "where was the {} before I picked it?")


@dataclass
class SyntheticNLQ:
    """Handles to what make_synthetic_nlq wrote."""

    feature_set: str
    text_set: str
    train: list[NLQQuery]
    val: list[NLQQuery]
    video_dim: int
    text_dim: int
    extractor: dict = field(default_factory=dict)


def make_synthetic_nlq(store, *, feature_set: str = "synthetic-nlq", text_set: str = "synthetic-nlq-text",
                       num_videos: int = 12, clips_per_video: int = 2, clip_sec: float = 64.0, fps: float = 1.0,
                       num_concepts: int = 12, queries_per_clip: int = 4, distractors_per_clip: int = 2,
                       window_sec: tuple[float, float] = (3.0, 7.0), video_dim: int = 64, text_dim: int = 48,
                       num_tokens: int = 6, noise: float = 0.6, val_fraction: float = 0.25,
                       seed: int = 0) -> SyntheticNLQ:
    """Write `num_videos` videos of planted features and the text features of their queries into `store`.

    Videos are split (not queries) between train and val, so val measures generalisation to unseen clips.
    Returns the queries of both splits (clip time, Ego4D conventions).
    """
    rng = np.random.default_rng(seed)
    need = queries_per_clip + distractors_per_clip
    if need > num_concepts:
        raise ValueError(f"queries_per_clip + distractors_per_clip = {need} > num_concepts = {num_concepts}")
    if need * window_sec[1] * 1.5 > clip_sec:
        raise ValueError(f"{need} windows of up to {window_sec[1]} s do not fit in a {clip_sec} s clip")
    vis_proto = unit(rng.standard_normal((num_concepts, video_dim)))
    text_map = rng.standard_normal((video_dim, text_dim)) / np.sqrt(video_dim)
    txt_proto = unit(vis_proto @ text_map)
    filler = unit(rng.standard_normal((8, text_dim)))
    scenes = unit(rng.standard_normal((6, video_dim)))
    names = [f"object{c:02d}" for c in range(num_concepts)]
    extractor = {"name": "synthetic-nlq", "seed": seed, "fps": fps, "video_dim": video_dim}
    store.create_feature_set(feature_set, extractor, dim=video_dim, dtype="float32")

    gap = 4.0  # seconds between clips, so clips are genuinely windows of a longer video
    texts: dict[str, np.ndarray] = {}
    n_val = max(1, int(round(num_videos * val_fraction)))
    train, val = [], []
    for v in range(num_videos):
        video_uid = f"synvid{v:03d}"
        duration, times, feats = background_video(rng, clips_per_video, clip_sec, gap, fps, scenes, noise, 3.0)
        split = val if v >= num_videos - n_val else train
        for c_i in range(clips_per_video):
            c_start = gap + c_i * (clip_sec + gap)
            clip_uid = f"{video_uid}_clip{c_i}"
            concepts = rng.choice(num_concepts, size=need, replace=False)
            windows = _place_windows(rng, need, window_sec, clip_sec)
            for k, (concept, (ws, we)) in enumerate(zip(concepts, windows)):
                sel = (times >= c_start + ws) & (times <= c_start + we)
                feats[sel] += 1.5 * vis_proto[concept]
                if k >= queries_per_clip:
                    continue  # distractor: planted but never asked about
                tpl = int(rng.integers(len(TEMPLATES)))
                query = TEMPLATES[tpl].format(names[concept])
                if query not in texts:
                    texts[query] = _query_tokens(rng, txt_proto[concept], filler, tpl, num_tokens)
                split.append(NLQQuery(video_uid=video_uid, clip_uid=clip_uid, annotation_uid=f"{clip_uid}_ann",
                                      query_idx=k, query=query, clip_video_start_sec=c_start,
                                      clip_video_end_sec=c_start + clip_sec, start_sec=float(ws), end_sec=float(we),
                                      template=TEMPLATES[tpl]))
        store.write_video(feature_set, video_uid, feats.astype(np.float32), times,
                          attrs={"fps": fps, "duration_s": duration, "synthetic": True})
    strings = sorted(texts)
    tokens = np.stack([texts[s] for s in strings]).astype(np.float32)
    lengths = np.full(len(strings), num_tokens, dtype=np.int64)
    store.write_texts(text_set, strings, tokens.mean(axis=1), tokens, lengths,
                      config={"name": "synthetic-nlq-text", "seed": seed, "dim": text_dim})
    return SyntheticNLQ(feature_set, text_set, train, val, video_dim, text_dim, extractor)


def _place_windows(rng, n: int, window_sec: tuple[float, float], clip_sec: float) -> list[tuple[float, float]]:
    """n non-overlapping windows (clip seconds) with lengths uniform in window_sec, in random order."""
    lengths = rng.uniform(*window_sec, size=n)
    slack = clip_sec - lengths.sum() - 1.0
    # random gaps: split the slack with a Dirichlet draw so windows spread over the whole clip
    gaps = rng.dirichlet(np.ones(n + 1)) * slack
    out, pos = [], 0.5
    for ln, g in zip(lengths, gaps[:-1]):
        pos += g
        out.append((round(pos, 3), round(pos + ln, 3)))
        pos += ln
    order = rng.permutation(n)
    return [out[i] for i in order]


def _query_tokens(rng, concept_vec, filler, template: int, num_tokens: int) -> np.ndarray:
    """[num_tokens, Dt] filler tokens with the concept's text prototype at a template-dependent position."""
    toks = filler[(np.arange(num_tokens) + template) % len(filler)] + 0.1 * rng.standard_normal(
        (num_tokens, filler.shape[1]))
    toks[(template + 1) % num_tokens] = concept_vec + 0.1 * rng.standard_normal(filler.shape[1])
    return toks


def write_nlq_json(queries: list[NLQQuery], path: str | Path, fps: float = 30.0) -> Path:
    """Write queries as an Ego4D NLQ annotation file (videos -> clips -> annotations -> language_queries)."""
    videos: dict[str, dict] = {}
    for q in queries:
        vid = videos.setdefault(q.video_uid, {"video_uid": q.video_uid, "clips": {}})
        clip = vid["clips"].setdefault(q.clip_uid, {
            "clip_uid": q.clip_uid, "video_start_sec": q.clip_video_start_sec,
            "video_end_sec": q.clip_video_end_sec, "video_start_frame": int(round(q.clip_video_start_sec * fps)),
            "video_end_frame": int(round(q.clip_video_end_sec * fps)), "clip_start_sec": 0.0,
            "clip_end_sec": q.clip_duration, "source_clip_uid": q.clip_uid, "annotations": {}})
        ann = clip["annotations"].setdefault(q.annotation_uid, {"annotation_uid": q.annotation_uid,
                                                                "language_queries": []})
        lq = ann["language_queries"]
        while len(lq) <= q.query_idx:  # query_idx is the position in this list
            lq.append(None)
        vs, ve = q.clip_video_start_sec + q.start_sec, q.clip_video_start_sec + q.end_sec
        lq[q.query_idx] = {"clip_start_sec": q.start_sec, "clip_end_sec": q.end_sec, "video_start_sec": vs,
                           "video_end_sec": ve, "video_start_frame": int(round(vs * fps)),
                           "video_end_frame": int(round(ve * fps)), "template": q.template, "query": q.query,
                           "slot_x": None, "verb_x": None, "slot_y": None, "verb_y": None, "raw_tags": []}
    out = {"version": "v1", "date": "synthetic", "description": "egoflow synthetic NLQ", "manifest": "",
           "videos": [{"video_uid": v["video_uid"], "split": "synthetic",
                       "clips": [dict(c, annotations=list(c["annotations"].values())) for c in v["clips"].values()]}
                      for v in videos.values()]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return path
