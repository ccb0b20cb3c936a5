"""Planted Moment Queries benchmark written straight into a FeatureStore (no video decoding, no weights).

Every video is a slow random walk among "scene" prototypes plus noise; inside its clips, action instances of
several classes are planted by adding the class's prototype to the steps they cover. Instances come in two
duration regimes (short and long, as in Ego4D MQ where most moments are short but some span minutes), do not
overlap, and some clips have no instance at all. Videos (not clips) are split between train and val, so val
measures generalisation to unseen clips.

    data = make_synthetic_mq(store, num_videos=12)
    data.train, data.val              # list[MQClip], disjoint videos, clip time
    write_mq_json(data.val, "moments_val.json")   # official Ego4D MQ annotation format
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egoflow.datasets.records import MQClip, MQInstance
from egoflow.datasets.synthetic.planted import background_video, unit


@dataclass
class SyntheticMQ:
    """Handles to what make_synthetic_mq wrote."""

    feature_set: str
    labels: list[str]  # class names, sorted
    train: list[MQClip]
    val: list[MQClip]
    dim: int
    extractor: dict = field(default_factory=dict)


def make_synthetic_mq(store, *, feature_set: str = "synthetic-mq", num_videos: int = 12, clips_per_video: int = 2,
                      clip_sec: float = 60.0, fps: float = 2.0, num_classes: int = 4, dim: int = 32,
                      instances_per_clip: tuple[int, int] = (1, 3), short_sec: tuple[float, float] = (2.0, 5.0),
                      long_sec: tuple[float, float] = (12.0, 24.0), long_fraction: float = 0.4,
                      empty_clip_fraction: float = 0.1, signal: float = 1.2, noise: float = 0.5,
                      val_fraction: float = 0.25, seed: int = 0) -> SyntheticMQ:
    """Write ``num_videos`` videos of planted features into ``store`` and return their MQ clips.

    ``signal`` scales the class prototypes added inside instances; ``noise`` is the per-step Gaussian noise
    (norm, roughly). Class of an instance and its duration regime are drawn independently, so the head cannot
    guess a label from a length.
    """
    rng = np.random.default_rng(seed)
    if instances_per_clip[1] * (long_sec[1] + 2.0) > clip_sec * 1.5:
        raise ValueError(f"{instances_per_clip[1]} instances of up to {long_sec[1]} s hardly fit in {clip_sec} s")
    labels = [f"action_{k:02d}" for k in range(num_classes)]
    proto = unit(rng.standard_normal((num_classes, dim)))
    scenes = unit(rng.standard_normal((6, dim)))
    extractor = {"name": "synthetic-mq", "seed": seed, "fps": fps, "dim": dim, "signal": signal, "noise": noise}
    store.create_feature_set(feature_set, extractor, dim=dim, dtype="float32")
    gap = 5.0  # seconds between clips, so clips are genuinely windows of a longer video
    n_val = max(1, int(round(num_videos * val_fraction)))
    train, val = [], []
    for v in range(num_videos):
        video_uid = f"mqvid{v:03d}"
        duration, times, feats = background_video(rng, clips_per_video, clip_sec, gap, fps, scenes, noise, 2.0)
        split = val if v >= num_videos - n_val else train
        for c_i in range(clips_per_video):
            c0 = gap + c_i * (clip_sec + gap)
            clip = MQClip(video_uid, f"{video_uid}_clip{c_i}", c0, c0 + clip_sec)
            n = 0 if rng.random() < empty_clip_fraction else int(rng.integers(instances_per_clip[0],
                                                                            instances_per_clip[1] + 1))
            lengths = [rng.uniform(*(long_sec if rng.random() < long_fraction else short_sec)) for _ in range(n)]
            for (s, e) in _place(rng, lengths, clip_sec):
                k = int(rng.integers(num_classes))
                sel = (times >= c0 + s) & (times <= c0 + e)
                feats[sel] += signal * proto[k]
                clip.instances.append(MQInstance(labels[k], float(s), float(e), True))
            split.append(clip)
        store.write_video(feature_set, video_uid, feats.astype(np.float32), times,
                          attrs={"fps": fps, "duration_s": duration, "synthetic": True})
    return SyntheticMQ(feature_set, labels, train, val, dim, extractor)


def _place(rng, lengths: list[float], clip_sec: float) -> list[tuple[float, float]]:
    """Non-overlapping segments (clip seconds) of the given lengths, spread over the clip, in time order."""
    if not lengths:
        return []
    lengths = np.asarray(lengths)
    slack = max(clip_sec - lengths.sum() - 1.0, 0.0)
    gaps = rng.dirichlet(np.ones(len(lengths) + 1)) * slack
    out, pos = [], 0.5
    for ln, g in zip(lengths, gaps[:-1]):
        pos += g
        out.append((round(pos, 3), round(min(pos + ln, clip_sec), 3)))
        pos += ln
    return out


def write_mq_json(clips: list[MQClip], path: str | Path, fps: float = 30.0) -> Path:
    """Write clips as an Ego4D Moment Queries annotation file (videos -> clips -> annotations -> labels)."""
    videos: dict[str, dict] = {}
    for c in clips:
        vid = videos.setdefault(c.video_uid, {"video_uid": c.video_uid, "split": "synthetic", "clips": []})
        labels = [{"start_time": i.start_sec, "end_time": i.end_sec, "label": i.label, "primary": i.primary,
                   "video_start_time": c.clip_video_start_sec + i.start_sec,
                   "video_end_time": c.clip_video_start_sec + i.end_sec,
                   "video_start_frame": int(round((c.clip_video_start_sec + i.start_sec) * fps)),
                   "video_end_frame": int(round((c.clip_video_start_sec + i.end_sec) * fps))} for i in c.instances]
        vid["clips"].append({
            "clip_uid": c.clip_uid, "video_start_sec": c.clip_video_start_sec, "video_end_sec": c.clip_video_end_sec,
            "video_start_frame": int(round(c.clip_video_start_sec * fps)),
            "video_end_frame": int(round(c.clip_video_end_sec * fps)), "clip_start_sec": 0.0,
            "clip_end_sec": c.clip_duration, "source_clip_uid": c.clip_uid,
            "annotations": [{"annotator_uid": "synthetic", "labels": labels}]})
    out = {"version": "v1", "date": "synthetic", "description": "egoflow synthetic MQ", "manifest": "",
           "videos": list(videos.values())}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return path
