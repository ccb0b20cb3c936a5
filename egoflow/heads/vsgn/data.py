"""Moment Queries data: join MQ clips with a feature store, resample each clip to a fixed temporal scale.

Every clip becomes ``temporal_scale`` (S) steps, whatever its length and the feature rate, as in the Ego4D MQ
baseline. Step ``i`` covers clip time ``[i, i + 1) * duration / S``; so a position ``x`` on the resampled axis
is exactly ``x * duration / S`` seconds and back (``seconds_to_positions`` / ``positions_to_seconds``).
The features at each step centre are linearly interpolated from the stored features using their real
timestamps, so irregular or clip-level (windowed) features land at the right times.

Optional video self-stitching (VSGN's VSS): a short clip (at most ``short_ratio * S`` stored steps) is laid
out at its own rate, followed by a gap and by a magnified copy that fills the rest of the sequence; its
instances appear in both parts. ``parts [2, 3]`` rows ``(offset, length, duration)`` map positions back.

Handling of awkward input (documented, tested):
- clips with no instances are kept: in training they contribute only negatives;
- a clip whose video is not in the store, or whose window holds no feature step ("empty clip"), raises
  ``MQDataError`` naming the clip and video (``on_missing="skip"`` drops such clips instead, with a warning);
- a label outside the vocabulary raises ``MQDataError`` (``unknown_labels="ignore"`` drops those instances
  from the *targets* only; evaluation still scores them, so the metric is not flattered);
- a feature set whose dim differs from the head's ``video_dim`` raises ``MQDataError`` before any training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from egoflow.datasets.records import MQClip

log = logging.getLogger(__name__)


class MQDataError(ValueError):
    """MQ annotations and features do not fit together (missing video, empty clip, unknown label, dim)."""


def label_vocabulary(clips: list[MQClip], primary_only: bool = True) -> list[str]:
    """Sorted labels of ``clips``; class id of ``labels[i]`` is ``i + 1`` (0 is background)."""
    return sorted({i.label for c in clips for i in c.instances if i.primary or not primary_only})


def seconds_to_positions(sec, duration: float, scale: int):
    """Clip seconds -> positions on the resampled axis (``sec * scale / duration``)."""
    return np.asarray(sec, dtype=np.float64) * (scale / duration)


def positions_to_seconds(pos, duration: float, scale: int):
    """Positions on the resampled axis -> clip seconds (``pos * duration / scale``), exact inverse."""
    return np.asarray(pos, dtype=np.float64) * (duration / scale)


def resample(feats: np.ndarray, times: np.ndarray, duration: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Features at the centres of ``steps`` equal steps over ``[0, duration]`` -> ``([steps, D], valid [steps])``.

    ``feats [T, D]`` with clip-time ``times [T]`` (sorted). Linear interpolation between the two stored steps
    around each centre; before the first / after the last stored step the nearest one is used, and a centre
    farther than one stored step from any stored time is marked invalid (e.g. a clip running past the end of
    its video).
    """
    T = feats.shape[0]
    ctr = (np.arange(steps) + 0.5) * (duration / steps)
    if T == 1:
        step = duration
        out = np.repeat(feats, steps, axis=0)
    else:
        step = float(np.median(np.diff(times))) or duration / T
        j = np.clip(np.searchsorted(times, ctr) - 1, 0, T - 2)
        t0, t1 = times[j], times[j + 1]
        a = np.clip((ctr - t0) / np.maximum(t1 - t0, 1e-9), 0.0, 1.0)[:, None]
        out = feats[j] * (1 - a) + feats[j + 1] * a
    valid = (ctr >= times[0] - step) & (ctr <= times[-1] + step)
    return out.astype(np.float32), valid


@dataclass
class MQSample:
    """One clip ready for VSGN (positions on the resampled axis)."""

    clip_uid: str
    duration: float  # clip length in seconds
    feats: np.ndarray  # [S, D] float32
    mask: np.ndarray  # [S] bool, False on gaps / steps with no features nearby
    part: np.ndarray  # [S] int8: 0 original, 1 magnified (self-stitching), -1 gap
    parts: np.ndarray  # [2, 3] rows (offset, length, duration); length 0 = absent
    gt_segments: np.ndarray  # [G, 2] positions
    gt_labels: np.ndarray  # [G] class ids 1..C


class MQDataset(Dataset):
    """MQ clips + their feature slices -> ``MQSample`` per clip (resampled on access, cheap).

    ``slices`` maps clip_uid to ``(feats [T, D], times [T])`` in clip time (see ``load_clip_features``).
    """

    def __init__(self, clips: list[MQClip], slices: dict, labels: list[str], temporal_scale: int, *,
                 stitching: bool = False, stitch_gap: int = 30, short_ratio: float = 0.4,
                 unknown_labels: str = "error", primary_only: bool = True):
        if unknown_labels not in ("error", "ignore"):
            raise ValueError(f"unknown_labels must be 'error' or 'ignore', not {unknown_labels!r}")
        self.clips = [c for c in clips if c.clip_uid in slices]
        self.slices, self.S = slices, int(temporal_scale)
        self.stitching, self.gap, self.short_ratio = stitching, int(stitch_gap), float(short_ratio)
        self.class_id = {lab: i + 1 for i, lab in enumerate(labels)}
        self.targets = []
        for c in self.clips:
            inst = [i for i in c.instances if i.primary or not primary_only]
            bad = sorted({i.label for i in inst if i.label not in self.class_id})
            if bad and unknown_labels == "error":
                raise MQDataError(f"clip {c.clip_uid}: label(s) {bad} not in the head's vocabulary of "
                                  f"{len(labels)} labels (train on annotations that contain them, or pass "
                                  "unknown_labels='ignore')")
            inst = [i for i in inst if i.label in self.class_id]
            seg = np.array([[i.start_sec, i.end_sec] for i in inst], dtype=np.float64).reshape(-1, 2)
            seg = np.clip(seg, 0.0, c.clip_duration)
            self.targets.append((seg, np.array([self.class_id[i.label] for i in inst], dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> MQSample:
        c = self.clips[i]
        feats, times = self.slices[c.clip_uid]
        seg_s, lab = self.targets[i]
        S, dur = self.S, max(c.clip_duration, 1e-6)
        n = feats.shape[0]
        if self.stitching and n <= self.short_ratio * S and n + self.gap < S - 1:
            m = S - n - self.gap  # magnified copy fills what the original and the gap leave
            f0, v0 = resample(feats, times, dur, n)
            f1, v1 = resample(feats, times, dur, m)
            x = np.concatenate([f0, np.zeros((self.gap, feats.shape[1]), np.float32), f1])
            mask = np.concatenate([v0, np.zeros(self.gap, bool), v1])
            part = np.concatenate([np.zeros(n, np.int8), -np.ones(self.gap, np.int8), np.ones(m, np.int8)])
            parts = np.array([[0, n, dur], [n + self.gap, m, dur]], dtype=np.float64)
            gts = np.concatenate([seg_s * (n / dur), n + self.gap + seg_s * (m / dur)])
            lab = np.concatenate([lab, lab])
        else:
            x, mask = resample(feats, times, dur, S)
            part = np.zeros(S, np.int8)
            parts = np.array([[0, S, dur], [0, 0, dur]], dtype=np.float64)
            gts = seconds_to_positions(seg_s, dur, S)
        return MQSample(c.clip_uid, dur, x, mask, part, parts, gts.astype(np.float32), lab)


def collate(samples: list[MQSample]) -> dict:
    """Stack samples: feats [B, S, D], mask [B, S], part [B, S], parts [B, 2, 3], gt_* padded to max G."""
    B = len(samples)
    G = max(1, max(len(s.gt_labels) for s in samples))
    gseg = torch.zeros(B, G, 2)
    glab = torch.zeros(B, G, dtype=torch.long)
    for b, s in enumerate(samples):
        g = len(s.gt_labels)
        if g:
            gseg[b, :g] = torch.from_numpy(s.gt_segments)
            glab[b, :g] = torch.from_numpy(s.gt_labels)
    batch = {
        "feats": torch.from_numpy(np.stack([s.feats for s in samples])),
        "mask": torch.from_numpy(np.stack([s.mask for s in samples])),
        "parts": torch.from_numpy(np.stack([s.parts for s in samples])),
        "gt_segments": gseg, "gt_labels": glab,
        "duration": torch.tensor([s.duration for s in samples], dtype=torch.float64),
        "clip_uid": [s.clip_uid for s in samples],
    }
    if any((s.part == 1).any() for s in samples):  # only stitched batches pay for cross-part neighbours
        batch["part"] = torch.from_numpy(np.stack([s.part for s in samples]).astype(np.int64))
    return batch


def check_feature_dim(store, feature_set: str, video_dim: int | None) -> int:
    """The feature set's dim; ``MQDataError`` when it differs from ``video_dim`` (if given)."""
    dim = int(store.feature_set_info(feature_set)["dim"])
    if video_dim is not None and dim != video_dim:
        raise MQDataError(f"feature set {feature_set!r} in {store.url} has dim {dim}, but the VSGN head expects "
                          f"video_dim={video_dim} (the run was trained on other features)")
    return dim


def load_clip_features(store, feature_set: str, clips: list[MQClip], on_missing: str = "error") -> dict:
    """``{clip_uid: (feats [T, D], times [T] clip time)}`` for every clip, loading each video once.

    ``on_missing="error"`` raises ``MQDataError`` listing clips whose video is absent from the store or whose
    window has no feature step; ``"skip"`` leaves them out with a warning.
    """
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', not {on_missing!r}")
    have = set(store.videos(feature_set))
    need = sorted({c.video_uid for c in clips})
    absent = [u for u in need if u not in have]
    videos = store.load_feature_set(feature_set, [u for u in need if u in have])
    out, problems = {}, []
    for c in clips:
        if c.video_uid not in videos:
            problems.append(f"clip {c.clip_uid}: video {c.video_uid} not in feature set {feature_set!r}")
            continue
        if not c.clip_duration > 0:
            problems.append(f"clip {c.clip_uid}: zero-length clip [{c.clip_video_start_sec}, "
                            f"{c.clip_video_end_sec}]")
            continue
        vf = videos[c.video_uid].slice(c.clip_video_start_sec, c.clip_video_end_sec)
        if vf.feats.shape[0] == 0:
            problems.append(f"clip {c.clip_uid}: no feature steps of video {c.video_uid} inside "
                            f"[{c.clip_video_start_sec}, {c.clip_video_end_sec}] s (empty clip)")
            continue
        out[c.clip_uid] = (vf.feats, vf.times)
    if problems:
        msg = f"{len(problems)} of {len(clips)} MQ clips unusable in {store.url}/{feature_set}" + (
            f" ({len(absent)} videos absent)" if absent else "") + ":\n  " + "\n  ".join(problems[:10])
        if on_missing == "error":
            raise MQDataError(msg + "\n(pass on_missing='skip' to leave them out)")
        log.warning("%s\nskipped.", msg)
    return out
