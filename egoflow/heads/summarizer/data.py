"""QFVS samples for the summarizer: store features averaged per shot, KTS segments, query prompts, labels.

One sample = one (video, concept-pair query). Shot features and KTS segments are per video and shared by its
queries. Text conditions per sample: the query prompt and the two concept prompts (EgoVLPv2's QFVS recipe), each
token-level ``[L, Dt]`` from the store's text set (or its pooled vector as a single token).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from egoflow.datasets.qfvs import QFVSVideo, concept_prompt, load_qfvs, qfvs_prompts, query_prompt
from egoflow.segment import kts
from egoflow.segment.shots import kts_segments, shot_features


class SummarizerDataError(ValueError):
    """Store features or annotations unusable for the summarizer (names the video / query / string)."""


@dataclass
class VideoData:
    uid: str
    shots: torch.Tensor  # [N, Dv] float32
    segments: torch.Tensor  # [N] int64 KTS segment of each shot
    boundaries: np.ndarray  # [S + 1]
    tags: np.ndarray  # [N, C] bool over the video's concept list
    concepts: list[str]  # columns of tags
    cond: torch.Tensor | None = None  # [3, N, Dv] shots fused with the query / concept-1 / concept-2 prompt
    slots: int = 0  # with cond: shot slots of a KTS segment row in the egovlpv2 layout (kts_lmax + 1)


@dataclass
class Sample:
    video: VideoData
    name: str  # CONCEPT1_CONCEPT2
    texts: list[torch.Tensor]  # 3 x [L, Dt]: query prompt, concept-1 prompt, concept-2 prompt
    labels: torch.Tensor  # [3, N] float: oracle summary, concept-1 shots, concept-2 shots
    oracle: tuple  # 0-based oracle shots


def _video_data(uid: str, v: QFVSVideo, vf, shot_seconds: float, lmax: int, max_change_points: int,
                vmax: float, kernel: str) -> VideoData:
    shots = shot_features(vf.feats, vf.times, v.num_shots, shot_seconds, uid)
    b = kts_segments(shots, lmax, max_change_points, vmax, kernel)
    concepts = v.concepts or sorted(set().union(*v.shot_concepts))
    return VideoData(uid, torch.from_numpy(shots), torch.from_numpy(kts.segment_ids(b)), b, v.tag_matrix(concepts),
                     concepts)


def load_videos(store, feature_set: str, videos: dict[str, QFVSVideo], shot_seconds: float, lmax: int,
                max_change_points: int, vmax: float, conditioned: bool = False, kernel: str = "cosine",
                all_prompts: bool = False) -> dict:
    """``{uid: VideoData}``; with a query-conditioned set (fused extractor) ``{(uid, query name): VideoData}``:
    each query reads the video conditioned on its query prompt, and KTS segments those shots. ``all_prompts``
    (the egovlpv2 arch) also reads it under both concept prompts, into ``cond``."""
    from egoflow.features_store.conditioned import read_conditioned
    from egoflow.features_store.errors import VideoMissing
    out = {}
    for uid, v in videos.items():
        try:
            if not conditioned:
                out[uid] = _video_data(uid, v, store.read_video(feature_set, uid), shot_seconds, lmax,
                                       max_change_points, vmax, kernel)
                continue
            for q in v.queries:
                vf = read_conditioned(store, feature_set, uid, query_prompt(*q.concepts))
                d = out[uid, q.name] = _video_data(uid, v, vf, shot_seconds, lmax, max_change_points, vmax, kernel)
                if all_prompts:
                    more = [read_conditioned(store, feature_set, uid, concept_prompt(c)) for c in q.concepts]
                    d.cond = torch.stack([d.shots] + [torch.from_numpy(shot_features(
                        f.feats, f.times, v.num_shots, shot_seconds, uid)) for f in more])
                    d.slots = lmax + 1
        except VideoMissing as e:
            raise SummarizerDataError(f"QFVS video {uid!r} has no complete features in {feature_set!r}: {e}") from None
    return out


def _text(tf, i: int) -> torch.Tensor:
    if tf.tokens is not None:
        return torch.from_numpy(tf.tokens[i, :max(1, int(tf.lengths[i]))].copy())
    return torch.from_numpy(tf.pooled[i:i + 1].copy())


def make_samples(store, text_set: str, videos: dict[str, QFVSVideo], data: dict[str, VideoData]) -> list[Sample]:
    strings = qfvs_prompts(videos)
    try:
        tf = store.load_texts(text_set, strings)
    except KeyError as e:
        raise SummarizerDataError(f"QFVS prompts missing from text set {text_set!r}: {e}") from None
    row = {s: i for i, s in enumerate(strings)}
    out = []
    for uid, v in videos.items():
        for q in v.queries:
            d = data[uid] if uid in data else data[uid, q.name]  # plain set: one per video; conditioned: per query
            col = {c: i for i, c in enumerate(d.concepts)}
            unknown = [c for c in q.concepts if c not in col]
            if unknown:
                raise SummarizerDataError(f"{uid} query {q.name}: unknown concept(s) {unknown}")
            labels = torch.zeros(3, d.shots.shape[0])
            labels[0, list(q.oracle)] = 1.0
            labels[1] = torch.from_numpy(d.tags[:, col[q.concepts[0]]].astype(np.float32))
            labels[2] = torch.from_numpy(d.tags[:, col[q.concepts[1]]].astype(np.float32))
            texts = [_text(tf, row[s]) for s in (query_prompt(*q.concepts), *map(concept_prompt, q.concepts))]
            out.append(Sample(d, q.name, texts, labels, q.oracle))
    return out


class QFVSDataset(Dataset):
    """The samples of a split, one per (video, query)."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


def collate_qfvs(samples: list[Sample]) -> dict:
    """Pad to the batch: feats [B, N, Dv] shots, mask [B, N], text [B, 3, L, Dt], text_mask [B, 3, L],
    labels [B, 3, N], KTS segment ids "segments" [B, N] (-1 pad); "video"/"query" names; "seg_index" [B * S, Lseg]
    (flat shot index b * N + i of every segment's shots, -1 = pad)."""
    b = len(samples)
    n = max(s.video.shots.shape[0] for s in samples)
    dv = samples[0].video.shots.shape[1]
    lt = max(t.shape[0] for s in samples for t in s.texts)
    dt = samples[0].texts[0].shape[1]
    shots, mask = torch.zeros(b, n, dv), torch.zeros(b, n, dtype=torch.bool)
    text, tmask = torch.zeros(b, 3, lt, dt), torch.zeros(b, 3, lt, dtype=torch.bool)
    labels = torch.zeros(b, 3, n)
    seg_ids = torch.full((b, n), -1, dtype=torch.long)
    segs = []
    for i, s in enumerate(samples):
        k = s.video.shots.shape[0]
        shots[i, :k], mask[i, :k], labels[i, :, :k] = s.video.shots, True, s.labels
        for j, t in enumerate(s.texts):
            text[i, j, :t.shape[0]], tmask[i, j, :t.shape[0]] = t, True
        seg_ids[i, :k] = s.video.segments
        bnd = s.video.boundaries
        segs += [torch.arange(int(a), int(c)) + i * n for a, c in zip(bnd[:-1], bnd[1:])]
    lseg = max(len(x) for x in segs)
    seg_index = torch.full((len(segs), lseg), -1, dtype=torch.long)
    for r, x in enumerate(segs):
        seg_index[r, :len(x)] = x
    out = {"feats": shots, "mask": mask, "text": text, "text_mask": tmask, "labels": labels,
           "seg_index": seg_index, "segments": seg_ids,
            "num_shots": torch.tensor([s.video.shots.shape[0] for s in samples]),
           "video": [s.video.uid for s in samples], "query": [s.name for s in samples]}
    if samples[0].video.cond is not None:
        out.update(_segment_layout(samples))
    return out


def _segment_layout(samples: list[Sample]) -> dict:
    """EgoVLPv2's layout: "seg_feats" [B, 3, S, slots, Dv] (each KTS segment's shots in a row of ``slots``,
    zeros after them), "seg_len" [B, S] (0 for the rows a video with fewer segments does not use)."""
    slots = samples[0].video.slots
    s_max = max(len(s.video.boundaries) - 1 for s in samples)
    dv = samples[0].video.cond.shape[-1]
    feats = torch.zeros(len(samples), 3, s_max, slots, dv)
    seg_len = torch.zeros(len(samples), s_max, dtype=torch.long)
    for i, s in enumerate(samples):
        bnd = s.video.boundaries
        for j, (a, c) in enumerate(zip(bnd[:-1], bnd[1:])):
            feats[i, :, j, :c - a] = s.video.cond[:, a:c]
            seg_len[i, j] = c - a
    return {"seg_feats": feats, "seg_len": seg_len}


def load_split(store, feature_set: str, text_set: str, root, videos, cfg) -> tuple[dict[str, QFVSVideo], QFVSDataset]:
    """QFVS ``videos`` of the folder ``root`` (annotations, the ground truth) and their samples: shot features
    of ``feature_set``, KTS segments and prompt embeddings of ``text_set`` as ``cfg`` (a summarizer Config) says."""
    vids = load_qfvs(root, videos=tuple(videos))
    is_cond = (store.feature_set_info(feature_set).get("extractor") or {}).get("conditioned") == "query"
    if cfg.arch == "egovlpv2" and not is_cond:
        raise SummarizerDataError(f"arch egovlpv2 reads query-fused shots: feature set {feature_set!r} is not "
                                  "query-conditioned (extract it with the fused extractor, fusion on, for every query "
                                  "and concept prompt)")
    if is_cond != cfg.conditioned:
        raise SummarizerDataError(f"feature set {feature_set!r} is {'' if is_cond else 'not '}query-conditioned: "
                                  f"set conditioned={str(is_cond).lower()} (--set conditioned={str(is_cond).lower()})")
    data = load_videos(store, feature_set, vids, cfg.shot_seconds, cfg.kts_lmax, cfg.kts_max_change_points,
                       cfg.kts_vmax, cfg.conditioned, cfg.kts_kernel, cfg.arch == "egovlpv2")
    return vids, QFVSDataset(make_samples(store, text_set, vids, data))
