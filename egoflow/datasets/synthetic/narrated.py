"""Synthetic narrated videos with planted moments, written straight into a FeatureStore (no video decoding).

Each video is a sequence of *segments*, each showing one concept (distinct within a video), separated by short
background stretches. A concept k has a text anchor ``c_k`` (unit vector in the joint space) and a visual anchor
``v_k = normalize(a * c_k + (1 - a) * r_k)`` with its own random direction ``r_k``: like CLIP, image and text
embeddings of the same thing are correlated but not equal (the modality gap), so a head has to learn the map.
Frames are ``normalize(v_k + noise)``; every segment gets one narration at a random time in its middle, whose
embedding is a paraphrase ``normalize(c_k + noise)``. NLQ queries ask for each planted segment with yet another
paraphrase, so zero-shot retrieval is only possible through the learned language alignment.

Annotations are written in the real Ego4D formats (narration.json, NLQ v1 json) so the real readers load them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from egoflow.datasets.records import Narration, NLQQuery
from egoflow.datasets.synthetic.nlq import write_nlq_json


@dataclass
class NarratedSpec:
    num_videos: int = 8  # videos to generate
    num_concepts: int = 12  # vocabulary of plantable concepts
    dim: int = 32  # embedding dim of frames and texts (joint space)
    fps: float = 2.0  # frame rate of the stored features
    segments: tuple = (3, 5)  # min/max planted segments per video (distinct concepts)
    segment_s: tuple = (8.0, 20.0)  # min/max segment length in seconds
    gap_s: tuple = (2.0, 6.0)  # min/max background between segments
    text_weight: float = 0.8  # a: share of the text anchor in a concept's visual anchor
    frame_noise: float = 0.6  # norm of the per-frame noise added to the unit visual anchor
    text_noise: float = 0.3  # norm of the paraphrase noise added to narration / query embeddings
    paraphrases: int = 4  # distinct narration strings per concept
    seed: int = 0  # everything is a function of the seed


@dataclass
class Segment:
    video_uid: str
    concept: int
    start_sec: float
    end_sec: float


@dataclass
class NarratedData:
    spec: NarratedSpec
    videos: dict = field(default_factory=dict)  # uid -> (feats [T, D] float32, times [T] float64, duration_s)
    segments: list = field(default_factory=list)  # [Segment]
    narrations: list = field(default_factory=list)  # [Narration]
    queries: list = field(default_factory=list)  # [NLQQuery], one clip = the whole video
    texts: dict = field(default_factory=dict)  # string -> unit embedding [D]
    anchors: np.ndarray | None = None  # [num_concepts, D] text anchors c_k (synthetic CharadesEgo class names)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def concept_name(k: int) -> str:
    return f"object{k:03d}"


def make_narrated(spec: NarratedSpec | None = None) -> NarratedData:
    """Generate videos, segments, narrations, NLQ queries and every string's embedding (deterministic)."""
    spec = spec or NarratedSpec()
    if spec.segments[1] > spec.num_concepts or spec.segments[0] < 1:
        raise ValueError(f"NarratedSpec: segments per video {spec.segments} must lie in [1, num_concepts = "
                         f"{spec.num_concepts}] (concepts are distinct within a video)")
    rng = np.random.default_rng(spec.seed)
    D = spec.dim
    anchors = _unit(rng.normal(size=(spec.num_concepts, D)))
    visual = _unit(spec.text_weight * anchors + (1 - spec.text_weight) * _unit(rng.normal(size=anchors.shape)))
    background = _unit(rng.normal(size=(4, D)))
    data = NarratedData(spec, anchors=anchors)
    noise = spec.frame_noise / np.sqrt(D)
    for p in range(spec.paraphrases):
        for k in range(spec.num_concepts):
            data.texts[f"#C C handles {concept_name(k)} way {p}"] = _unit(
                anchors[k] + spec.text_noise * rng.normal(size=D) / np.sqrt(D))
    for v in range(spec.num_videos):
        uid = f"narrated{v:03d}"
        n_seg = int(rng.integers(spec.segments[0], spec.segments[1] + 1))
        concepts = rng.choice(spec.num_concepts, n_seg, replace=False)
        t, pieces = 0.0, []
        for k in concepts:
            gap = float(rng.uniform(*spec.gap_s))
            seg = float(rng.uniform(*spec.segment_s))
            pieces.append((background[rng.integers(len(background))], t, t + gap))
            pieces.append((visual[k], t + gap, t + gap + seg))
            data.segments.append(Segment(uid, int(k), t + gap, t + gap + seg))
            at = t + gap + seg * float(rng.uniform(0.2, 0.8))
            text = f"#C C handles {concept_name(int(k))} way {int(rng.integers(spec.paraphrases))}"
            data.narrations.append(Narration(uid, round(at, 3), text))
            t += gap + seg
        gap = float(rng.uniform(*spec.gap_s))
        pieces.append((background[0], t, t + gap))
        duration = t + gap
        times = (np.arange(int(duration * spec.fps)) + 0.5) / spec.fps
        feats = np.zeros((len(times), D), np.float32)
        for vec, s, e in pieces:
            sel = (times >= s) & (times < e)
            feats[sel] = vec
        feats = _unit(feats + noise * rng.normal(size=feats.shape))
        data.videos[uid] = (feats, times, duration)
        for qi, seg in enumerate(s for s in data.segments if s.video_uid == uid):
            q = f"where did I handle the {concept_name(seg.concept)}?"
            data.texts.setdefault(q, _unit(anchors[seg.concept] + spec.text_noise * rng.normal(size=D) / np.sqrt(D)))
            data.queries.append(NLQQuery(uid, f"{uid}_clip", f"{uid}_ann", qi, q, 0.0, duration,
                                         round(seg.start_sec, 3), round(seg.end_sec, 3), "Objects: Where is X?"))
    return data


def write_to_store(data: NarratedData, store, feature_set: str = "synthetic-narrated",
                   text_set: str = "synthetic-narrated-text") -> tuple[str, str]:
    """Write the frame features and every string's embedding; returns ``(feature_set, text_set)``."""
    extractor = {"name": "synthetic-narrated", **{k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in asdict(data.spec).items()}}
    store.create_feature_set(feature_set, extractor, dim=data.spec.dim, dtype="float32")
    for uid, (feats, times, duration) in data.videos.items():
        store.write_video(feature_set, uid, feats, times,
                          {"fps": data.spec.fps, "duration_s": duration, "source": {"path": "synthetic"}})
    strings = sorted(data.texts)
    store.write_texts(text_set, strings, np.stack([data.texts[s] for s in strings]),
                      config={"name": "synthetic-narrated", "seed": data.spec.seed})
    return feature_set, text_set


def narration_json(data: NarratedData) -> dict:
    """The Ego4D ``narration.json`` layout: ``{video_uid: {"narration_pass_1": {"narrations": [...]}}}``."""
    out: dict = {}
    for i, n in enumerate(data.narrations):
        v = out.setdefault(n.video_uid, {"status": "complete", n.pass_name: {"narrations": [], "summaries": []}})
        v[n.pass_name]["narrations"].append({"timestamp_sec": n.time_sec,
                                             "timestamp_frame": int(round(n.time_sec * 30)),
                                             "narration_text": n.text, "annotation_uid": f"narr{i:05d}"})
    return out


def write_annotations(data: NarratedData, out_dir) -> tuple[Path, Path]:
    """Write ``narration.json`` and ``nlq_val.json`` under ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    narr = out / "narration.json"
    narr.write_text(json.dumps(narration_json(data)))
    return narr, write_nlq_json(data.queries, out / "nlq_val.json")
