"""Query-conditioned feature sets (fused extractor with fusion on): features keyed by (clip, query).

Layout (DESIGN.md): the set's extractor config has ``"conditioned": "query"``; one group per clip, one entry per
query named by a stable hash of the exact query string::

    <set>/<clip_uid>/            attrs: num_steps T, queries {hash: query}, fps, window, source, "complete" (last)
        <query_hash>/feats [T, D]    fused video feature of every window given this query
        <query_hash>/times [T]       window centres, seconds (the same for every query of the clip)

Readers never see a clip that is not complete. Heads read these through :func:`read_conditioned` (one clip,
one query) or :func:`load_conditioned` (many pairs), behind a flag; the plain ``read_video`` does not apply.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
from zarr.codecs import ZstdCodec

from egoflow.features_store.errors import StoreError, VideoMissing
from egoflow.features_store.layout import VideoFeatures, check_uid
from egoflow.features_store.videos import fresh_video_group

if TYPE_CHECKING:  # annotations only: store.py never imports this module (consistency.py verifies clips)
    from egoflow.features_store.store import FeatureStore


def query_key(query: str) -> str:
    """Stable name of a query's entry: sha1 of the exact UTF-8 string, 20 hex digits."""
    return hashlib.sha1(query.encode("utf-8")).hexdigest()[:20]


def is_conditioned(store: FeatureStore, name: str) -> bool:
    return (store.feature_set_info(name).get("extractor") or {}).get("conditioned") == "query"


def _require(store: FeatureStore, name: str):
    if not is_conditioned(store, name):
        raise StoreError(f"feature set {name!r} of {store.url} is not query-conditioned (no \"conditioned\": "
                         "\"query\" in its extractor config); read it with read_video")
    return store.feature_set_group(name)


def write_conditioned(store: FeatureStore, name: str, clip_uid: str, queries: list[str], feats: np.ndarray,
                      times: np.ndarray, attrs: dict | None = None, scores: np.ndarray | None = None) -> None:
    """Write one clip's features for each query: ``feats [Q, T, D]`` (query order), ``times [T]``, optionally
    ``scores [Q, T]`` (the fused model's P(match) of every window, e.g. for zero-shot grounding); the clip is
    marked complete only after every entry is stored."""
    check_uid(clip_uid)
    fs = _require(store, name)
    info = fs.attrs
    feats, times = np.asarray(feats), np.asarray(times, dtype=np.float64)
    where = f"{store.url}/{name}/{clip_uid}"
    if feats.ndim != 3 or feats.shape[0] != len(queries) or feats.shape[2] != info["dim"]:
        raise StoreError(f"{where}: feats must be [{len(queries)}, T, {info['dim']}], got {list(feats.shape)}")
    if times.shape != (feats.shape[1],) or feats.shape[1] == 0:
        raise StoreError(f"{where}: times must be [T] with T = {feats.shape[1]} > 0, got {list(times.shape)}")
    if not np.isfinite(feats).all():
        raise StoreError(f"{where}: feats contain NaN or inf")
    if scores is not None and np.shape(scores) != feats.shape[:2]:
        raise StoreError(f"{where}: scores must be [{feats.shape[0]}, {feats.shape[1]}], got {list(np.shape(scores))}")
    keys = [query_key(q) for q in queries]
    if len(set(keys)) != len(keys):
        raise StoreError(f"{where}: the same query is given twice")
    meta = {**(attrs or {}), "num_steps": int(feats.shape[1]), "queries": dict(zip(keys, queries)),
            "complete": False}
    g = fresh_video_group(fs, clip_uid, meta)
    zstd = [ZstdCodec(level=store.compression_level)]
    T, D = feats.shape[1:]
    for j, (k, f) in enumerate(zip(keys, feats)):
        q = g.create_group(k)
        q.create_array("feats", data=f.astype(info["dtype"]), chunks=(T, D), compressors=zstd)
        q.create_array("times", data=times, chunks=(T,), compressors=zstd)
        if scores is not None:
            q.create_array("vtm", data=np.asarray(scores[j], np.float32), chunks=(T,), compressors=zstd)
    g.update_attributes({"complete": True})


def conditioned_queries(store: FeatureStore, name: str, clip_uid: str) -> list[str]:
    """The queries stored for a complete clip (in the order they were written)."""
    fs = _require(store, name)
    a = fs.video_attrs(clip_uid)
    if not a or a.get("complete") is not True:
        raise VideoMissing(f"clip {clip_uid!r} is {'absent' if a is None else 'not complete'} in {name!r}")
    return list(a["queries"].values())


def read_conditioned(store: FeatureStore, name: str, clip_uid: str, query: str) -> VideoFeatures:
    """Features of ``clip_uid`` conditioned on ``query`` (exact string): ``feats [T, D]`` float32, ``times [T]``.

    This is the reader the VSLNet / summarizer heads call when given a query-conditioned set.
    """
    fs = _require(store, name)
    a = fs.video_attrs(clip_uid)
    if not a or a.get("complete") is not True:
        raise VideoMissing(f"clip {clip_uid!r} is {'absent' if a is None else 'not complete'} in feature set "
                           f"{name!r} of {store.url}")
    k = query_key(query)
    if k not in a.get("queries", {}):
        raise VideoMissing(f"query {query!r} was not extracted for clip {clip_uid!r} in {name!r} "
                           f"({len(a.get('queries', {}))} queries stored)")
    g = fs.group[clip_uid][k]
    return VideoFeatures(np.asarray(g["feats"][:], dtype=np.float32), np.asarray(g["times"][:], np.float64), a)


def read_conditioned_scores(store: FeatureStore, name: str, clip_uid: str, query: str) -> np.ndarray:
    """The stored P(match) ``[T]`` of every window of ``clip_uid`` for ``query`` (VTM head of the fused model)."""
    vf = read_conditioned(store, name, clip_uid, query)  # checks completeness and the query
    g = store.feature_set_group(name).group[clip_uid][query_key(query)]
    if "vtm" not in g:
        raise VideoMissing(f"clip {clip_uid!r} in {name!r} has no VTM scores stored")
    return np.asarray(g["vtm"][:], np.float32)[:len(vf.times)]


def load_conditioned(store: FeatureStore, name: str, pairs: list[tuple[str, str]]) -> list[VideoFeatures]:
    """Many (clip_uid, query) pairs at once, in order."""
    return [read_conditioned(store, name, c, q) for c, q in pairs]


def verify_conditioned(store: FeatureStore, name: str, uid: str, a: dict, dim: int) -> list[str]:
    """Problems of one complete conditioned clip (attributes ``a``): every query's arrays readable, ``[T, dim]``,
    finite."""
    out = []
    for q in a["queries"].values():
        try:
            vf = read_conditioned(store, name, uid, q)
        except Exception as e:  # noqa: BLE001 - any read error is a finding, not a crash
            out.append(f"{name}/{uid}: query {q!r}: unreadable arrays ({e})")
            continue
        if vf.feats.shape != (a.get("num_steps"), dim) or not np.isfinite(vf.feats).all():
            out.append(f"{name}/{uid}: query {q!r}: shape {vf.feats.shape} or non-finite values")
    return out
