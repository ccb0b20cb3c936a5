"""NLQ annotations joined with the feature store: per-query tensors for span heads (VSLNet).

Each query's clip is sliced out of its video's features by time, resampled to at most `max_pos_len` steps, and
every step keeps its exact extent in clip seconds (`step_starts`, `step_ends`: a partition of [0, clip duration])
so decoded step indices map back to seconds without the uniform-grid approximation of the Ego4D baseline.

Bad input is reported before any training: a missing feature/text set, a dim that does not match the head's
config, videos or query embeddings missing from the store, clips or answers outside their video/clip, empty splits.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from egoflow.datasets.records import NLQQuery
from egoflow.heads.spec import feature_set_info

log = logging.getLogger(__name__)


class NLQDataError(ValueError):
    """Base class: NLQ annotations and the feature store do not fit together."""


class FeatureDimMismatch(NLQDataError):
    """The store's feature/text dim differs from the head's configured dim."""


class MissingFeatures(NLQDataError):
    """A feature set, text set, video or query embedding is not in the store."""


class AnnotationOutOfRange(NLQDataError):
    """A clip lies outside its video, or an answer window outside its clip (or ends before it starts)."""


class EmptySplit(NLQDataError):
    """No queries left in a split."""


def _examples(items, n: int = 5) -> str:
    items = list(items)
    more = f" … and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(repr(x) for x in items[:n]) + more


def step_boundaries(times: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Extents of steps centred at `times` [T] (clip seconds): midpoints between neighbours, the first step starts
    at 0 and the last ends at `duration`, so the steps partition the clip. Returns (starts [T], ends [T])."""
    times = np.asarray(times, dtype=np.float64)
    mids = (times[1:] + times[:-1]) / 2
    starts = np.concatenate([[0.0], mids])
    ends = np.concatenate([mids, [max(float(duration), float(times[-1]))]])
    return starts, ends


def resample_steps(feats: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_len: int):
    """Average consecutive steps into exactly `max_len` bins when T > max_len (else unchanged).

    feats [T, D], starts/ends [T] -> feats [T', D], starts/ends [T'] where a bin spans from the start of its first
    step to the end of its last step, so times stay exact.
    """
    t = feats.shape[0]
    if t <= max_len:
        return feats, starts, ends
    # T > max_len makes consecutive edges differ by more than 1 before rounding, so every bin is non-empty
    edges = np.round(np.linspace(0, t, max_len + 1)).astype(np.int64)
    sums = np.add.reduceat(feats.astype(np.float64), edges[:-1], axis=0)
    counts = np.diff(edges)[:, None]
    return (sums / counts).astype(np.float32), starts[edges[:-1]], ends[edges[1:] - 1]


def time_to_index(start_sec: float, end_sec: float, starts: np.ndarray, ends: np.ndarray) -> tuple[int, int]:
    """Steps containing the window's start and end (clip seconds); an end on a boundary belongs to the earlier
    step. Returns (start_idx, end_idx) with start_idx <= end_idx."""
    t = len(starts)
    s = int(np.clip(np.searchsorted(ends, start_sec, side="right"), 0, t - 1))
    e = int(np.clip(np.searchsorted(ends, end_sec, side="left"), 0, t - 1))
    return s, max(s, e)


def highlight_labels(s: int, e: int, t: int, extension: float) -> np.ndarray:
    """Foreground labels [T]: steps s..e plus round(extension * (e - s + 1)) steps on each side."""
    ext = int(round(extension * (e - s + 1)))
    lab = np.zeros(t, dtype=np.float32)
    lab[max(0, s - ext): min(t, e + ext + 1)] = 1.0
    return lab


@dataclass
class Clip:
    """One clip's (resampled) features and step extents in clip seconds."""

    feats: np.ndarray  # [T, D] float32
    starts: np.ndarray  # [T] float64
    ends: np.ndarray  # [T] float64
    duration: float


class NLQDataset(torch.utils.data.Dataset):
    """Queries of one split with their clip features and token features; items are dicts of numpy arrays.

    Attributes: queries (kept, in order), clips {clip_uid: Clip} (query-conditioned features: {(clip_uid, query):
    Clip}), extension, dropped_zero_length and skipped_missing (counts of queries left out).
    """

    def __init__(self, queries: list[NLQQuery], clips: dict, tokens: dict[str, np.ndarray],
                 extension: float, dropped_zero_length: int = 0, conditioned: bool = False):
        self.queries, self.clips, self.tokens = queries, clips, tokens
        self.key = (lambda q: (q.clip_uid, q.query)) if conditioned else (lambda q: q.clip_uid)
        self.extension = extension
        self.dropped_zero_length = dropped_zero_length
        self.skipped_missing = 0
        self.labels = []
        for q in queries:
            c = clips[self.key(q)]
            self.labels.append(time_to_index(q.start_sec, q.end_sec, c.starts, c.ends))

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, i: int) -> dict:
        q = self.queries[i]
        c = self.clips[self.key(q)]
        s, e = self.labels[i]
        return {"feats": c.feats, "text": self.tokens[q.query], "start_idx": s, "end_idx": e,
                "highlight": highlight_labels(s, e, len(c.feats), self.extension),
                "step_starts": c.starts, "step_ends": c.ends, "index": i}


def collate_nlq(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of dataset items to batch tensors.

    feats [B, T, Dv] float32, mask [B, T] bool, text [B, L, Dt] float32, text_mask [B, L] bool,
    start_idx/end_idx/index [B] long, highlight [B, T] float32, step_starts/step_ends [B, T] float64.
    """
    b = len(items)
    t = max(len(x["feats"]) for x in items)
    n = max(len(x["text"]) for x in items)
    dv, dt = items[0]["feats"].shape[1], items[0]["text"].shape[1]
    out = {"feats": torch.zeros(b, t, dv), "mask": torch.zeros(b, t, dtype=torch.bool),
           "text": torch.zeros(b, n, dt), "text_mask": torch.zeros(b, n, dtype=torch.bool),
           "highlight": torch.zeros(b, t), "step_starts": torch.zeros(b, t, dtype=torch.float64),
           "step_ends": torch.zeros(b, t, dtype=torch.float64)}
    for i, x in enumerate(items):
        tv, tq = len(x["feats"]), len(x["text"])
        out["feats"][i, :tv] = torch.from_numpy(x["feats"])
        out["mask"][i, :tv] = True
        out["text"][i, :tq] = torch.from_numpy(np.asarray(x["text"], dtype=np.float32))
        out["text_mask"][i, :tq] = True
        out["highlight"][i, :tv] = torch.from_numpy(x["highlight"])
        out["step_starts"][i, :tv] = torch.from_numpy(x["step_starts"])
        out["step_ends"][i, :tv] = torch.from_numpy(x["step_ends"])
        # padding repeats the last extent so decoded (masked) pairs can never produce odd seconds
        out["step_starts"][i, tv:] = float(x["step_ends"][-1])
        out["step_ends"][i, tv:] = float(x["step_ends"][-1])
    for k in ("start_idx", "end_idx", "index"):
        out[k] = torch.tensor([x[k] for x in items], dtype=torch.long)
    return out


def check_feature_set(store, feature_set: str, video_dim: int | None = None) -> dict:
    """Raise MissingFeatures / FeatureDimMismatch early; returns the feature set's info."""
    info = feature_set_info(store, feature_set, MissingFeatures)
    if video_dim is not None and int(info["dim"]) != int(video_dim):
        raise FeatureDimMismatch(f"feature set {feature_set!r} has dim {info['dim']} but the head is configured "
                                 f"for video_dim={video_dim}")
    return info


def _store_name(store) -> str:
    return repr(getattr(store, "url", None) or getattr(store, "path", None) or store)


def query_problems(queries: list[NLQQuery], duration: float, tol: float) -> list[str]:
    """Queries (of one video of `duration` s) whose clip lies outside the video or answer outside the clip."""
    bad = []
    for q in queries:
        if q.clip_video_start_sec < -tol or q.clip_video_end_sec > duration + tol or q.clip_duration <= 0:
            bad.append(f"{q.annotation_uid}#{q.query_idx} clip {q.clip_uid} [{q.clip_video_start_sec}, "
                       f"{q.clip_video_end_sec}] s vs video {q.video_uid} of {duration:.3f} s")
        elif q.start_sec < -tol or q.end_sec > q.clip_duration + tol or q.end_sec < q.start_sec:
            bad.append(f"{q.annotation_uid}#{q.query_idx} answer [{q.start_sec}, {q.end_sec}] s vs clip "
                       f"{q.clip_uid} of {q.clip_duration:.3f} s")
    return bad


def _duration(vf) -> float:
    d = vf.attrs.get("duration_s") if vf.attrs else None
    if d is None:  # fall back to the end of the last step
        d = float(vf.times[-1]) + (float(vf.times[-1] - vf.times[-2]) / 2 if len(vf.times) > 1 else 0.0)
    return float(d)


def _slice_clip(vf, q: NLQQuery, duration: float, max_pos_len: int) -> Clip:
    lo, hi = max(0.0, q.clip_video_start_sec), min(q.clip_video_end_sec, duration)
    sel = np.nonzero((vf.times >= lo) & (vf.times <= hi))[0]
    if len(sel) == 0:  # clip shorter than one step: use the step nearest to its centre
        sel = np.array([int(np.argmin(np.abs(vf.times - (lo + hi) / 2)))])
    starts, ends = step_boundaries(vf.times[sel] - q.clip_video_start_sec, q.clip_duration)
    feats, starts, ends = resample_steps(np.asarray(vf.feats[sel], dtype=np.float32), starts, ends, max_pos_len)
    return Clip(feats, starts, ends, q.clip_duration)


def _conditioned_clip(vf, q: NLQQuery, max_pos_len: int) -> Clip:
    """A query-conditioned sequence of clip ``q.clip_uid`` (extracted from the clip file: times in clip time)."""
    sel = np.nonzero(vf.times <= q.clip_duration)[0]
    if len(sel) == 0:
        sel = np.array([0])
    starts, ends = step_boundaries(vf.times[sel], q.clip_duration)
    feats, starts, ends = resample_steps(np.asarray(vf.feats[sel], dtype=np.float32), starts, ends, max_pos_len)
    return Clip(feats, starts, ends, q.clip_duration)


def _load_conditioned(store, feature_set: str, queries: list[NLQQuery], max_pos_len: int, split: str,
                      skip_missing: bool) -> tuple[list[NLQQuery], dict, int]:
    """``(queries kept, {(clip_uid, query): Clip}, skipped)`` from a query-conditioned set (fused extractor)."""
    from egoflow.features_store.conditioned import read_conditioned
    from egoflow.features_store.errors import VideoMissing

    clips, missing, kept = {}, [], []
    for q in queries:
        key = (q.clip_uid, q.query)
        if key not in clips:
            try:
                clips[key] = _conditioned_clip(read_conditioned(store, feature_set, q.clip_uid, q.query), q,
                                               max_pos_len)
            except VideoMissing as e:
                missing.append(str(e))
                continue
        kept.append(q)
    if missing and not skip_missing:
        raise MissingFeatures(f"{split}: {len(missing)} (clip, query) pairs have no query-conditioned features in "
                              f"{feature_set!r} of store {_store_name(store)}: {_examples(missing, 3)} "
                              "(extract them with `egoflow extract CLIPS --encoder fused --queries FILE`, or "
                              "skip_missing=True)")
    return kept, clips, len(queries) - len(kept)


def _load_tokens(store, text_set: str, strings: list[str], text_dim: int | None, max_len: int,
                 split: str) -> dict[str, np.ndarray]:
    if text_set not in store.text_sets():
        raise MissingFeatures(f"text set {text_set!r} is not in store {_store_name(store)} "
                              f"(it has: {_examples(store.text_sets())}); run `egoflow encode-text`")
    try:
        tf = store.load_texts(text_set, strings)
    except KeyError as err:
        raise MissingFeatures(f"{split}: query embeddings missing from text set {text_set!r}: {err}") from None
    tokens, lengths = tf.tokens, tf.lengths
    if tokens is None:  # a text set with pooled features only: one token per query
        log.warning("text set %r has no token-level features; using pooled features as a 1-token query", text_set)
        tokens, lengths = tf.pooled[:, None, :], np.ones(len(strings), dtype=np.int64)
    if text_dim is not None and tokens.shape[-1] != text_dim:
        raise FeatureDimMismatch(f"text set {text_set!r} has dim {tokens.shape[-1]} but the head is configured "
                                 f"for text_dim={text_dim}")
    # keep each query's valid tokens only (float16 to keep ~10k Ego4D queries small in memory)
    return {s: np.asarray(tokens[i, :max(1, min(int(lengths[i]), max_len))], dtype=np.float16)
            for i, s in enumerate(strings)}


def load_nlq_split(store, feature_set: str, queries: list[NLQQuery], *, text_set: str, max_pos_len: int = 128,
                   video_dim: int | None = None, text_dim: int | None = None, drop_zero_length: bool = False,
                   extension: float = 0.1, split: str = "train", tol: float = 1.0,
                   skip_missing: bool = False, load_group: int = 64, conditioned: bool = False) -> NLQDataset:
    """Check and load one split. `store` is an egoflow FeatureStore (or its path/URL).

    ``conditioned``: `feature_set` is query-conditioned (the fused extractor's (clip, query) layout): each
    query reads its own sequence of its clip instead of a slice of the clip's video.

    Raises EmptySplit, MissingFeatures (set, videos or query texts), FeatureDimMismatch, AnnotationOutOfRange,
    naming the split, uids and store keys involved.
    """
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        from egoflow.features_store import FeatureStore
        store = FeatureStore(str(store))
    queries = list(queries)
    if not queries:
        raise EmptySplit(f"{split} split has no queries")
    info = check_feature_set(store, feature_set, video_dim)
    is_cond = (info.get("extractor") or {}).get("conditioned") == "query"
    if is_cond != bool(conditioned):
        raise MissingFeatures(f"feature set {feature_set!r} is {'' if is_cond else 'not '}query-conditioned: set "
                              f"conditioned={str(is_cond).lower()} (--set conditioned={str(is_cond).lower()})")
    dropped = 0
    if drop_zero_length:
        kept = [q for q in queries if q.end_sec - q.start_sec > 1e-6]
        dropped = len(queries) - len(kept)
        if dropped:
            log.info("%s: dropped %d of %d queries with a zero-length answer window", split, dropped, len(queries))
        queries = kept
        if not queries:
            raise EmptySplit(f"{split} split has no queries left after dropping {dropped} zero-length windows")

    if conditioned:
        queries, clips, skipped = _load_conditioned(store, feature_set, queries, max_pos_len, split, skip_missing)
        if not queries:
            raise EmptySplit(f"{split} split has no queries left after skipping {skipped} with missing features")
        tokens = _load_tokens(store, text_set, sorted({q.query for q in queries}), text_dim, max_pos_len, split)
        data = NLQDataset(queries, clips, tokens, extension, dropped, conditioned=True)
        data.skipped_missing = skipped
        return data
    have = set(store.videos(feature_set))
    missing = sorted({q.video_uid for q in queries} - have)
    skipped = 0
    if missing:
        n_q = sum(q.video_uid in set(missing) for q in queries)
        msg = (f"{split}: {len(missing)} videos ({n_q} queries) have no complete features in set {feature_set!r} "
               f"of store {_store_name(store)}: {_examples(missing)}")
        if not skip_missing:
            raise MissingFeatures(msg + " (skip_missing=True drops these queries)")
        log.warning("%s; skipping them", msg)
        queries = [q for q in queries if q.video_uid in have]
        skipped += n_q
    if skip_missing:
        known = store.has_texts(text_set, [q.query for q in queries]) if text_set in store.text_sets() else None
        if known is not None and not all(known):
            log.warning("%s: skipping %d queries without text embeddings in %r, e.g. %s", split,
                        known.count(False), text_set, _examples([q.query for q, k in zip(queries, known) if not k]))
            skipped += known.count(False)
            queries = [q for q, k in zip(queries, known) if k]
    if not queries:
        raise EmptySplit(f"{split} split has no queries left after skipping {skipped} with missing features")
    tokens = _load_tokens(store, text_set, sorted({q.query for q in queries}), text_dim, max_pos_len, split)

    # whole videos can be hours long: load them a group at a time and keep only the (resampled) clips
    by_video: dict[str, list[NLQQuery]] = {}
    for q in queries:
        by_video.setdefault(q.video_uid, []).append(q)
    uids = sorted(by_video)
    clips: dict[str, Clip] = {}
    problems: list[str] = []
    for i in range(0, len(uids), load_group):
        for uid, vf in store.load_feature_set(feature_set, uids[i:i + load_group]).items():
            duration = _duration(vf)
            bad = query_problems(by_video[uid], duration, tol)
            problems += bad
            if bad:
                continue
            for q in by_video[uid]:
                if q.clip_uid not in clips:
                    clips[q.clip_uid] = _slice_clip(vf, q, duration, max_pos_len)
    if problems:
        raise AnnotationOutOfRange(f"{len(problems)} {split} queries point outside their video/clip: "
                                   f"{_examples(problems)}")
    data = NLQDataset(queries, clips, tokens, extension, dropped)
    data.skipped_missing = skipped
    return data
