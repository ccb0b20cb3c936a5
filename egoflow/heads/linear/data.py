"""Clip samples for the linear heads: one window of a store video (+ a question embedding) and its targets."""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from egoflow.datasets.errors import AnnotationError
from egoflow.features_store.conditioned import conditioned_queries, read_conditioned
from egoflow.features_store.errors import VideoMissing
from egoflow.heads.train import move_to

log = logging.getLogger(__name__)


class ClipSamples(Dataset):
    """``[{"feats" [T, Dv], "times" [T] clip seconds, "text" [Dt]?, "targets" [K] long, "index"}]``; ``keys``
    holds each sample's annotation record (what predictions are written for)."""

    def __init__(self, samples: list[dict], keys: list, skipped_missing: int = 0):
        self.samples, self.keys, self.skipped_missing = samples, keys, skipped_missing

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def collate(samples: list[dict]) -> dict:
    """-> feats [B, T, Dv] zero-padded, mask [B, T] bool, targets [B, K], index [B], text [B, Dt] when present."""
    T = max(len(s["feats"]) for s in samples)
    B, D = len(samples), samples[0]["feats"].shape[1]
    feats, mask = torch.zeros(B, T, D), torch.zeros(B, T, dtype=torch.bool)
    for i, s in enumerate(samples):
        feats[i, :len(s["feats"])] = s["feats"]
        mask[i, :len(s["feats"])] = True
    out = {"feats": feats, "mask": mask, "targets": torch.stack([s["targets"] for s in samples]),
           "index": torch.tensor([s["index"] for s in samples])}
    if "text" in samples[0]:
        out["text"] = torch.stack([s["text"] for s in samples])
    return out


def window_samples(store, feature_set: str, windows: list[tuple[str, float, float]], targets: list[list[int]],
                   path, where: list[str], skip_missing: bool = False, texts: np.ndarray | None = None,
                   keys: list | None = None) -> ClipSamples:
    """Samples of video windows ``(video_uid, start_sec, end_sec)``; a window whose video is not in the store is
    an error naming the annotation file and record (or skipped and counted). A window shorter than one step
    takes the step nearest its centre (EK-100 has sub-second segments)."""
    have = set(store.videos(feature_set))
    keep = [i for i, (uid, _, _) in enumerate(windows) if uid in have]
    if len(keep) < len(windows) and not skip_missing:
        i = next(i for i, (uid, _, _) in enumerate(windows) if uid not in have)
        n = len(windows) - len(keep)
        raise AnnotationError(path, where[i], f"video {windows[i][0]!r} is not in feature set {feature_set!r} of "
                              f"{store.url} ({n} record(s) without a clip; set skip_missing=true to leave them out)")
    if len(keep) < len(windows):
        log.warning("%s: %d record(s) left out: their videos are not in %s", path, len(windows) - len(keep),
                    feature_set)
    videos = store.load_feature_set(feature_set, sorted({windows[i][0] for i in keep}))
    samples, out_keys = [], []
    for i in keep:
        item = _window_item(videos[windows[i][0]], *windows[i][1:], targets[i], len(samples))
        if texts is not None:
            item["text"] = torch.from_numpy(np.asarray(texts[i], np.float32))
        samples.append(item)
        out_keys.append(keys[i] if keys is not None else i)
    if not samples:
        raise AnnotationError(path, None, f"no record has its video in feature set {feature_set!r}")
    return ClipSamples(samples, out_keys, len(windows) - len(keep))


def _window_item(video, s: float, e: float, target: list[int], index: int) -> dict:
    """One sample of ``video`` (VideoFeatures) between s and e seconds; a window shorter than one step takes the
    step nearest its centre."""
    vf = video.slice(s, e)
    if len(vf.times) == 0:
        j = int(np.argmin(np.abs(video.times - (s + e) / 2)))
        feats, times = video.feats[j:j + 1], video.times[j:j + 1] - s
    else:
        feats, times = vf.feats, vf.times
    return {"feats": torch.from_numpy(np.ascontiguousarray(feats, np.float32)), "times": times,
            "targets": torch.tensor(target, dtype=torch.long), "index": index}


def conditioned_samples(store, feature_set: str, windows: list[tuple[str, float, float]], queries: list[str],
                        targets: list[list[int]], path, where: list[str], skip_missing: bool = False,
                        keys: list | None = None) -> ClipSamples:
    """Samples of a query-conditioned set: record i reads the fused features of (its video, ``queries[i]``) in its
    window. A video not in the set is an error (or skipped with ``skip_missing``); a question the set was not
    extracted for is always an error naming the file, record, set and question. Every pair is checked before
    any feature is read."""
    stored: dict[str, set | None] = {}
    for uid, _, _ in windows:
        if uid not in stored:
            try:
                stored[uid] = set(conditioned_queries(store, feature_set, uid))
            except VideoMissing:
                stored[uid] = None
    keep = [i for i, (uid, _, _) in enumerate(windows) if stored[uid] is not None]
    if len(keep) < len(windows) and not skip_missing:
        i = next(i for i, (uid, _, _) in enumerate(windows) if stored[uid] is None)
        raise AnnotationError(path, where[i], f"video {windows[i][0]!r} is not in query-conditioned feature set "
                              f"{feature_set!r} of {store.url} ({len(windows) - len(keep)} record(s) without it; "
                              "set skip_missing=true to leave them out)")
    lacking = [i for i in keep if queries[i] not in stored[windows[i][0]]]
    if lacking:
        i = lacking[0]
        raise AnnotationError(path, where[i], f"question {queries[i]!r} of video {windows[i][0]!r} has no fused "
                              f"feature in query-conditioned set {feature_set!r} of {store.url} ({len(lacking)} "
                              f"question(s) missing): extract them with `egoflow extract VIDEOS --encoder fused "
                              f"--feature-set {feature_set} --queries {path}`")
    samples = [_window_item(read_conditioned(store, feature_set, windows[i][0], queries[i]), *windows[i][1:],
                            targets[i], n) for n, i in enumerate(keep)]
    if not samples:
        raise AnnotationError(path, None, f"no record has its video in feature set {feature_set!r}")
    return ClipSamples(samples, [keys[i] if keys is not None else i for i in keep], len(windows) - len(keep))


@torch.no_grad()
def run_model(model, decode, data: ClipSamples, batch_size: int = 256) -> list[dict]:
    """Decoded outputs of every sample, in dataset order."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    out: list[dict] = []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate):
        b = move_to(batch, device)
        out += decode(model(b), b)
    model.train(was)
    return out
