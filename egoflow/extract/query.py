"""Query-conditioned extraction: the fused backbone with fusion on, features per (video, query) into a
``"conditioned": "query"`` set (:mod:`egoflow.features_store.conditioned`).

    extract_conditioned(["/data/clips"], "s.zarr", EncoderSpec("fused", "egovlpv2-base", "EgoVLPv2.pth"),
                        queries_from_file("nlq_val.json"), ExtractConfig(fps=30, stride=16))

The unfused lower layers run once per window and only the top M fused layers per query (the EgoVLPv2 reuse
point, ``encoder.window_tokens`` / ``encoder.conditioned``). ``extract_conditioned_one`` is the unit of work
(the CLI loop and one Prefect task per video call it), claimed first like ``pipeline.extract_one``.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egoflow.extract.discover import discover_videos, source_info, video_uid
from egoflow.extract.durations import duration_attrs as _duration
from egoflow.extract.encoders import resolve
from egoflow.extract.fused.extract import check_fusion_tuned, conditioned_set_name, iter_windows
from egoflow.extract.results import Summary, VideoResult
from egoflow.extract.short import short_reason
from egoflow.features_store import FeatureStore
from egoflow.features_store.conditioned import write_conditioned


def _resolve(encoder, cfg):
    """(fused encoder object, cfg with window F) from an EncoderSpec or a FusedEncoder."""
    encoder, cfg = resolve(encoder, cfg)
    if not getattr(encoder, "clip_level", False):
        raise ValueError("query-conditioned features need the fused encoder (--encoder fused)")
    return encoder, replace(cfg, window=encoder.cfg.num_frames)


def prepare_conditioned(store, encoder, cfg, feature_set: str | None = None, strict: bool = False):
    """Create (or check) the ``"conditioned": "query"`` set of ``encoder`` (spec or object); (store, set name).
    An untuned fusion (every gate 0) warns, or with ``strict`` refuses (``check_fusion_tuned``)."""
    encoder, cfg = _resolve(encoder, cfg)
    check_fusion_tuned(encoder, strict)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    name = feature_set or conditioned_set_name(encoder.describe(), cfg)
    desc = {**encoder.describe(), "dim": encoder.fused_dim, "pooling": "fused-video-cls", "conditioned": "query",
            "fps": cfg.fps, "window": cfg.window, "stride": cfg.stride or cfg.window,
            "sampling": encoder.cfg.frame_rule or "pts-centre"}
    store.create_feature_set(name, desc, dim=encoder.fused_dim, dtype=cfg.dtype)
    return store, name


def queries_for(queries, uid: str) -> list[str]:
    """The queries of video ``uid``: one list for every video, or its entry of ``{uid: [queries]}``."""
    return list(queries) if isinstance(queries, list) else list((queries or {}).get(uid, []))


def extract_conditioned_one(path, store, name: str, encoder, qs: list[str], cfg, reuse: bool = True):
    """Query-conditioned features of one video for ``qs`` into set ``name`` (claimed first, like
    ``pipeline.extract_one``); a VideoResult, failures recorded, not raised."""
    encoder, cfg = _resolve(encoder, cfg)
    p = Path(path)
    uid = video_uid(p)
    res = VideoResult(uid, "failed", str(p))
    if not qs:
        res.status, res.reason = "skipped", "no queries for this video"
        return res
    t0 = time.perf_counter()
    token = store.claim(name, uid)
    if token is None:  # another writer (a re-run shard's twin) is on it
        res.status, res.reason = "skipped", "claimed by another writer"
        return res
    try:
        source = source_info(p)
        if not cfg.force and store.is_complete(name, uid, source):
            a = store.video_attrs(name, uid)
            if set(qs) <= set(a.get("queries", {}).values()):
                res.status = "skipped"
                return res
        if reason := short_reason(p, cfg):
            res.stage, res.reason = "check", reason
            store.record_failure(name, uid, res.stage, res.reason, source)
            return res
        feats, scores = [[] for _ in qs], [[] for _ in qs]
        times, n = [], {"frames": 0}
        for clips, ts in iter_windows(p, encoder, cfg, counter=n):
            times.append(ts)
            cache = encoder.window_tokens(clips) if reuse else None  # once per window, for every query
            for j, q in enumerate(qs):
                f, s = encoder.conditioned(cache, q) if reuse else encoder.conditioned_full(clips, q)
                feats[j].append(f)
                scores[j].append(s)
        if not times:
            from egoflow.extract.video import VideoReadError

            raise VideoReadError(p, "decode", "no frames could be decoded")
        T = np.concatenate(times)
        Fq = np.stack([np.concatenate(f) for f in feats])
        Sq = np.stack([np.concatenate(s) for s in scores])
        attrs = {"fps": cfg.fps, **_duration(p, T, cfg.fps), "source": source,
                 "window": {"frames": cfg.window, "stride": cfg.stride or cfg.window}}
        write_conditioned(store, name, uid, qs, Fq, T, attrs, scores=Sq)
        res.status, res.steps, res.frames, res.duration_s = "done", len(T), n["frames"], attrs["duration_s"]
        res.seconds = time.perf_counter() - t0
    except (ConnectionError, TimeoutError):
        raise  # a store hiccup: the flow's task retries it
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
        res.stage, res.reason = "encode", f"{type(e).__name__}: {e}"
        store.record_failure(name, uid, res.stage, res.reason, None)
    finally:
        store.release(name, uid, token)
    return res


def extract_conditioned(inputs, store, encoder, queries, cfg, feature_set: str | None = None,
                        progress: bool = True, reuse: bool = True, strict: bool = False):
    """Query-conditioned features of every video for its queries into a ``"conditioned": "query"`` set.

    ``encoder``: an EncoderSpec (fused) or a FusedEncoder. ``reuse=False`` runs the whole fused model per query
    (for the benchmark's comparison; same numbers). ``strict``: refuse an untuned fusion instead of warning.
    Returns (pipeline Summary, set name).
    """
    encoder, cfg = _resolve(encoder, cfg)
    store, name = prepare_conditioned(store, encoder, cfg, feature_set, strict)
    summary, t0 = Summary(), time.perf_counter()
    for p in tqdm(discover_videos(inputs), desc=f"extract -> {name}", unit="video", disable=not progress):
        summary.results.append(extract_conditioned_one(p, store, name, encoder, queries_for(queries, video_uid(p)),
                                                       cfg, reuse))
    summary.seconds = time.perf_counter() - t0
    return summary, name
