"""LAVITI data: videos cut into fixed chunks, narrations turned into sampled intervals, batches for the model.

Bad input has one defined handling each (counted in ``stats`` and logged with the video uid):

- narrations outside ``[0, duration]`` of their video: dropped;
- duplicated narrations (same time, same text): kept once; same time, different texts: all kept, sharing one
  timestamp (neighbours are the next *distinct* timestamps, so no interval collapses to zero width);
- chunks with fewer frames than one token (``kernel``): skipped in training (prediction pads them to one token);
- chunks without narrations: skipped in training (no positive pair, nothing to align);
- narrations of videos missing from the feature set: counted, their video skipped.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from egoflow.datasets.records import Narration

log = logging.getLogger(__name__)


class LavitiDataError(ValueError):
    """Input that LAVITI cannot train or predict on (message names the file / video / clip)."""


@dataclass
class Chunk:
    """One fixed-length window of a video; every time is in chunk time (seconds from ``start_s``)."""

    video_uid: str
    start_s: float  # chunk start in video (or clip) time
    duration_s: float  # chunk length: relative time = chunk time / duration_s
    feats: np.ndarray  # [T, Dv] float32
    times: np.ndarray  # [T] float64
    narr_time: np.ndarray | None = None  # [M] narration timestamps
    start_lo: np.ndarray | None = None  # [M] earliest allowed interval start (bounded by the previous narration)
    end_hi: np.ndarray | None = None  # [M] latest allowed interval end (bounded by the next narration)
    text: np.ndarray | None = None  # [M, E] L2-normalised narration embeddings


def chunk_windows(duration: float, chunk_s: float) -> list[tuple[float, float]]:
    """``[(start, end)]`` covering ``[0, duration]`` with windows of ``min(chunk_s, duration)``.

    The last window is aligned to the end (overlapping its predecessor) so every window of a long video has the
    full length and relative times mean the same seconds in all of them.
    """
    length = min(chunk_s, duration)
    if length <= 0:
        return []
    starts = list(np.arange(0.0, max(duration - length, 0.0) + 1e-9, chunk_s))
    if starts[-1] + length < duration - 1e-9:
        starts.append(duration - length)
    return [(float(s), float(s) + length) for s in starts]


def cut(feats: np.ndarray, times: np.ndarray, start: float, end: float, last: bool):
    keep = (times >= start) & ((times <= end) if last else (times < end))
    return feats[keep], times[keep] - start


def narration_bounds(times: np.ndarray, duration: float, reach: float, default_gap: float):
    """Allowed interval range of each narration ``times [M]`` -> ``(start_lo [M], end_hi [M])``.

    Ego4D narrations are instants. Narration i gets start ~ U[t_i - r * (t_i - t_prev), t_i] and
    end ~ U[t_i, t_i + r * (t_next - t_i)], with t_prev / t_next the neighbouring *distinct* timestamps and
    r = ``reach`` in (0, 1]; r = 0.5 keeps the intervals of neighbours from overlapping. A missing neighbour
    (first/last narration) borrows the gap on the other side; a lone narration uses ``default_gap``.
    """
    t = np.asarray(times, np.float64)
    u = np.unique(t)
    i = np.searchsorted(u, t)
    prev_gap = np.where(i > 0, t - u[np.maximum(i - 1, 0)], np.nan)
    next_gap = np.where(i < len(u) - 1, u[np.minimum(i + 1, len(u) - 1)] - t, np.nan)
    prev_gap = np.where(np.isnan(prev_gap), next_gap, prev_gap)
    next_gap = np.where(np.isnan(next_gap), prev_gap, next_gap)
    prev_gap = np.nan_to_num(prev_gap, nan=default_gap)
    next_gap = np.nan_to_num(next_gap, nan=default_gap)
    return np.maximum(t - reach * prev_gap, 0.0), np.minimum(t + reach * next_gap, duration)


def sample_intervals(t, lo, hi, rng: np.random.Generator | None):
    """Start/end per narration: uniform in ``[lo, t]`` / ``[t, hi]``; the midpoints when ``rng`` is None."""
    if rng is None:
        return (lo + t) / 2, (t + hi) / 2
    return lo + (t - lo) * rng.random(len(t)), t + (hi - t) * rng.random(len(t))


def select_narrations(narrs: list[Narration], duration: float, cfg, stats: dict):
    """One video's usable narrations -> ``(times [M], texts)`` sorted by time (see the module doc)."""
    uid = narrs[0].video_uid
    if cfg.narration_pass is not None:
        passes = {n.pass_name for n in narrs}
        keep = cfg.narration_pass if cfg.narration_pass in passes else sorted(passes)[0]
        narrs = [n for n in narrs if n.pass_name == keep]
    inside = [n for n in narrs if 0.0 <= n.time_sec <= duration]
    if len(inside) < len(narrs):
        stats["narrations_outside"] += len(narrs) - len(inside)
        log.warning("video %s: %d narration(s) outside [0, %.1f] s dropped", uid, len(narrs) - len(inside), duration)
    uniq = sorted({(float(n.time_sec), n.text) for n in inside})
    stats["narrations_duplicated"] += len(inside) - len(uniq)
    return np.array([t for t, _ in uniq], np.float64), [s for _, s in uniq]


def training_windows(uid: str, vf, duration: float, cfg, stats: dict):
    """``(start, end, feats, times)`` of every chunk of a video (times in chunk seconds) that holds at least one
    token; shorter ones are counted in ``stats["chunks_too_short"]``, logged and skipped."""
    wins = chunk_windows(duration, cfg.chunk_s)
    for w, (s, e) in enumerate(wins):
        feats, times = cut(vf.feats, vf.times, s, e, last=w == len(wins) - 1)
        if len(times) < cfg.kernel:
            stats["chunks_too_short"] += 1
            log.warning("video %s: chunk at %.1f s has %d frame(s), fewer than one token (kernel %d): skipped",
                        uid, s, len(times), cfg.kernel)
            continue
        yield s, e, feats, times


def training_chunks(videos: dict, narrations: list[Narration], text_emb: dict[str, np.ndarray], cfg):
    """Cut every narrated video into chunks with their narrations -> ``(chunks, stats)``.

    ``videos``: video_uid -> VideoFeatures; ``text_emb``: narration text -> L2-normalised ``[E]`` embedding.
    """
    stats = defaultdict(int)
    by_video: dict[str, list[Narration]] = defaultdict(list)
    for n in narrations:
        by_video[n.video_uid].append(n)
    chunks = []
    for uid in sorted(by_video):
        if uid not in videos:
            stats["videos_without_features"] += 1
            continue
        vf = videos[uid]
        duration = vf.duration
        t_all, texts = select_narrations(by_video[uid], duration, cfg, stats)
        lo_all, hi_all = narration_bounds(t_all, duration, cfg.interval_reach, cfg.default_gap_s)
        for s, e, feats, times in training_windows(uid, vf, duration, cfg, stats):
            sel = (t_all >= s) & (t_all <= e)
            if not sel.any():
                stats["chunks_without_narrations"] += 1
                continue
            chunks.append(Chunk(uid, s, e - s, feats, times, t_all[sel] - s,
                                np.maximum(lo_all[sel], s) - s, np.minimum(hi_all[sel], e) - s,
                                np.stack([text_emb[texts[i]] for i in np.flatnonzero(sel)])))
    stats["chunks"] = len(chunks)
    stats["narrations_used"] = int(sum(len(c.narr_time) for c in chunks))
    return chunks, dict(stats)


def keep_at_most(n: int, k: int, rng: np.random.Generator | None) -> np.ndarray:
    """Sorted indices of ``n`` ground truths: all of them, or ``k`` drawn at random (the first ``k`` when ``rng``
    is None) so that every kept one has a moment query to match."""
    idx = np.arange(n)
    if n <= k:
        return idx
    return np.sort(rng.choice(idx, k, replace=False)) if rng is not None else idx[:k]


class SeededDraws(torch.utils.data.Dataset):
    """A dataset drawing from its own generator (``None``: deterministic), whose state ``fit`` saves in
    ``last.pt`` so that a resumed run repeats the draws of an uninterrupted one."""

    def __init__(self, seed: int | None):
        self.rng = None if seed is None else np.random.default_rng(seed)

    def rng_state(self) -> dict | None:
        return None if self.rng is None else self.rng.bit_generator.state

    def set_rng_state(self, state: dict | None) -> None:
        if self.rng is not None and state is not None:
            self.rng.bit_generator.state = state


class NarratedChunks(SeededDraws):
    """Training items: a chunk with freshly sampled narration intervals (``rng=None`` -> deterministic midpoints).

    Chunks with more narrations than moment queries keep a random ``max_narrations`` of them per draw so every
    ground truth has a prediction to match.
    """

    def __init__(self, chunks: list[Chunk], max_narrations: int, seed: int | None = 0):
        super().__init__(seed)
        self.chunks, self.max_narrations = chunks, max_narrations

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict:
        c = self.chunks[i]
        idx = keep_at_most(len(c.narr_time), self.max_narrations, self.rng)
        start, end = sample_intervals(c.narr_time[idx], c.start_lo[idx], c.end_hi[idx], self.rng)
        return {"chunk": c, "start": start, "end": end, "text": c.text[idx]}


def collate(items: list) -> dict:
    """Items (dicts from :class:`NarratedChunks`, or bare :class:`Chunk` for prediction) -> padded batch.

    ``feats [B, T, Dv]``, ``mask [B, T]``, ``frame_pos [B, T]`` (relative time), ``frame_times [B, T]`` (chunk
    seconds), ``offset [B]`` (chunk start), ``duration [B]``; with narrations also ``text [B, M, E]``,
    ``text_mask [B, M]``, ``start_pos`` / ``end_pos [B, M]``.
    """
    items = [it if isinstance(it, dict) else {"chunk": it} for it in items]
    chunks = [it["chunk"] for it in items]
    B, T = len(chunks), max(len(c.times) for c in chunks)
    D = chunks[0].feats.shape[1]
    feats = torch.zeros(B, T, D)
    mask = torch.zeros(B, T, dtype=torch.bool)
    frame_times = torch.zeros(B, T, dtype=torch.float64)
    for b, c in enumerate(chunks):
        n = len(c.times)
        feats[b, :n] = torch.from_numpy(np.asarray(c.feats, np.float32))
        mask[b, :n] = True
        frame_times[b, :n] = torch.from_numpy(c.times)
    duration = torch.tensor([c.duration_s for c in chunks], dtype=torch.float64)
    batch = {"feats": feats, "mask": mask, "frame_times": frame_times, "duration": duration,
             "frame_pos": (frame_times / duration[:, None].clamp(min=1e-6)).float(),
             "offset": torch.tensor([c.start_s for c in chunks], dtype=torch.float64)}
    if "text" in items[0]:
        M, E = max(len(it["text"]) for it in items), items[0]["text"].shape[1]
        batch["text"] = torch.zeros(B, M, E)
        batch["text_mask"] = torch.zeros(B, M, dtype=torch.bool)
        batch["start_pos"] = torch.zeros(B, M)
        batch["end_pos"] = torch.zeros(B, M)
        for b, it in enumerate(items):
            m, dur = len(it["text"]), chunks[b].duration_s
            batch["text"][b, :m] = torch.from_numpy(np.asarray(it["text"], np.float32))
            batch["text_mask"][b, :m] = True
            batch["start_pos"][b, :m] = torch.from_numpy(it["start"] / dur)
            batch["end_pos"][b, :m] = torch.from_numpy(it["end"] / dur)
    return batch
