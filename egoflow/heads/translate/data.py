"""VideoTranslate samples: clips of cached features (a narration's window, an action segment, a whole video)
with a task prefix and a target text, grouped so that tasks can train back to back, and their batches.

A clip's steps (those inside ``[start, end]``; the nearest step when none is) are average-pooled into
``num_frames`` bins, so every clip is ``[num_frames, Dv]`` with a mask (shorter clips are padded).
A narration outside ``[0, duration]`` of its video is an error naming the file, video and time, unless
``drop_outside`` (then it is dropped and counted in ``stats["outside"]``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from egoflow.heads.translate.model import PREFIXES
from egoflow.heads.translate.rank import pad_ids
from egoflow.heads.translate.text import TranslateInputError, encode

log = logging.getLogger(__name__)


@dataclass
class Clip:
    video_uid: str
    start: float  # video seconds
    end: float
    kind: str = "narration"  # a key of PREFIXES: which task prefix the encoder reads
    text: str = ""  # the target ("" when predicting)
    key: str = ""  # the id predictions are keyed by
    labels: tuple = ()  # class indices: multi-hot positives (CharadesEgo) or one per label set (EK-100)


def load_videos(store, feature_set: str, uids, source) -> dict:
    """Every video of ``uids`` from the store; a missing one is an error naming the annotation source."""
    have = set(store.videos(feature_set))
    missing = sorted(set(uids) - have)
    if missing:
        raise TranslateInputError(f"{source}: video {missing[0]!r} ({len(missing)} missing) is not in feature set "
                                  f"{feature_set!r} of {store.url}")
    return store.load_feature_set(feature_set, sorted(set(uids)))


def narration_clips(narrations, videos: dict, window_s: float, source, drop_outside: bool,
                    stats: dict) -> list[Clip]:
    """One clip of ``window_s`` seconds centred on each narration (clamped to the video)."""
    out = []
    for n in narrations:
        dur = videos[n.video_uid].duration
        if not 0.0 <= n.time_sec <= dur:
            if not drop_outside:
                raise TranslateInputError(f"{source}: narration of video {n.video_uid!r} at {n.time_sec} s lies "
                                          f"outside the video [0, {dur:.2f}] s ({n.text!r})")
            stats["outside"] = stats.get("outside", 0) + 1
            continue
        s = min(max(0.0, n.time_sec - window_s / 2), max(0.0, dur - window_s))
        out.append(Clip(n.video_uid, s, min(dur, s + window_s), "narration", n.text,
                        f"{n.video_uid}_{n.time_sec:.3f}"))
    if stats.get("outside"):
        log.warning("%s: %d narration(s) outside their video dropped", source, stats["outside"])
    return out


def pool_clip(vf, start: float, end: float, num_frames: int) -> np.ndarray:
    """The steps of ``[start, end]`` average-pooled into at most ``num_frames`` bins -> ``[n, Dv]``."""
    sel = np.flatnonzero((vf.times >= start) & (vf.times <= end))
    if len(sel) == 0:
        sel = np.array([int(np.argmin(np.abs(vf.times - (start + end) / 2)))])
    x = vf.feats[sel]
    if len(x) <= num_frames:
        return x
    return np.stack([b.mean(0) for b in np.array_split(x, num_frames)])


@dataclass
class ClipSet(Dataset):
    """Samples (clip features + prefix + target ids + labels) grouped: item i is ``[samples of group i]``."""

    clips: list
    feats: list  # [n_i, Dv] float32 per clip
    prefix_ids: dict  # kind -> prefix token ids
    target_ids: list  # ids per clip (ending in </s>)
    groups: list  # list of lists of clip indices
    num_classes: tuple = ()
    multilabel: bool = False
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> list[int]:
        return list(self.groups[i])


def make_clipset(clips: list[Clip], videos: dict, tok, cfg, groups=None, num_classes=(), multilabel=False,
                 stats: dict | None = None) -> ClipSet:
    """Pool every clip, tokenize prefixes and targets (cut to the kind's max length and counted)."""
    stats = dict(stats or {})
    feats = [torch.from_numpy(np.ascontiguousarray(pool_clip(videos[c.video_uid], c.start, c.end, cfg.num_frames)))
             for c in clips]
    kinds = sorted({c.kind for c in clips})
    prefix = {k: tok(PREFIXES[k], add_special_tokens=False)["input_ids"] for k in kinds}
    targets = [None] * len(clips)
    stats.setdefault("truncated_targets", 0)
    for k in kinds:
        idx = [i for i, c in enumerate(clips) if c.kind == k]
        ids, cut = encode(tok, [clips[i].text for i in idx], cfg.max_narration_len if k == "narration"
                          else cfg.max_label_len)
        stats["truncated_targets"] += cut
        for i, r in zip(idx, ids):
            targets[i] = r
    if stats["truncated_targets"]:
        log.warning("%d target text(s) longer than the max length were cut", stats["truncated_targets"])
    groups = groups if groups is not None else [[i] for i in range(len(clips))]
    return ClipSet(clips, feats, prefix, targets, groups, tuple(num_classes), multilabel, stats)


class Collate:
    """Group indices -> batch: "prefix_ids"/"prefix_mask" [B, P], "feats" [B, F, Dv] / "mask" [B, F],
    "target_ids"/"target_mask" [B, L], "index" [B], and "labels" [B, C] / "class_targets" [B, K] if labelled."""

    def __init__(self, data: ClipSet, pad_id: int):
        self.data, self.pad_id = data, pad_id

    def __call__(self, groups) -> dict:
        d = self.data
        idx = [i for g in groups for i in (g if isinstance(g, list) else [g])]
        clips = [d.clips[i] for i in idx]
        width = max(d.feats[i].shape[0] for i in idx)
        feats = torch.zeros((len(idx), width, d.feats[idx[0]].shape[1]))
        mask = torch.zeros((len(idx), width), dtype=torch.bool)
        for j, i in enumerate(idx):
            feats[j, : d.feats[i].shape[0]] = d.feats[i]
            mask[j, : d.feats[i].shape[0]] = True
        p_ids, p_mask = pad_ids([d.prefix_ids[c.kind] for c in clips], self.pad_id)
        t_ids, t_mask = pad_ids([d.target_ids[i] for i in idx], self.pad_id)
        batch = {"prefix_ids": p_ids, "prefix_mask": p_mask, "feats": feats, "mask": mask, "target_ids": t_ids,
                 "target_mask": t_mask, "index": torch.tensor(idx)}
        if d.num_classes and d.multilabel:
            lab = torch.zeros((len(idx), d.num_classes[0]))
            for j, c in enumerate(clips):
                lab[j, list(c.labels)] = 1.0
            batch["labels"] = lab
        elif d.num_classes:
            batch["class_targets"] = torch.tensor([list(c.labels) for c in clips], dtype=torch.long)
        return batch
