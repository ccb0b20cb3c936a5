"""One Zarr v3 store holding every video's features, their timestamps and the extractor's config.

Layout (see DESIGN.md)::

    <store>/                         attrs {"egoflow_store": 1}
      <feature_set>/                 attrs {"extractor", "config_hash", "dim", "dtype", "egoflow_version"}
        <video_uid>/                 attrs {fps, num_steps, duration_s, source, window?, "complete": true}
          feats  [T, D]  float16 (default), zstd
          times  [T]     float64, seconds from video start
      texts/<text_set>/<part>/       see texts.py

Why it is safe with many writers: each video has its own group, written by one writer; Zarr v3 keeps no child
listing in a parent's metadata, so creating ``<set>/<uid>`` never rewrites ``<set>/zarr.json``. ``complete``
is written last, so a reader (and a rerun) never mistakes a half-written video for a finished one.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from egoflow import __version__
from egoflow.features_store import claims
from egoflow.features_store.consistency import check_local_root, claim_config, verify_videos
from egoflow.features_store.errors import (
    FeatureSetMismatch,
    FeatureSetMissing,
    StoreError,
    StoreNotFound,
    VideoMissing,
)
from egoflow.features_store.layout import (
    RESERVED,
    SetGroup,
    VideoFeatures,
    check_uid,
    config_hash,
    optional_torch,
    to_float32,
)
from egoflow.features_store.packed import drop_pack, load_packed, pack_feature_set
from egoflow.features_store.texts import TextFeatures, TextSets
from egoflow.features_store.videos import fresh_video_group, remove_video

STORE_FORMAT = 1


class FeatureStore:
    """Feature store at a local path or fsspec URL (``memory://x``, ``s3://bucket/x.zarr``)."""

    def __init__(self, url: str, mode: str = "a", storage_options: dict | None = None,
                 chunk_rows: int = 8192, compression_level: int = 3):
        self.url = str(url)
        self.read_only = mode == "r"
        self.chunk_rows = chunk_rows  # rows per chunk of feats; arrays shorter than this get chunk = T
        self.compression_level = compression_level
        kw = {"storage_options": storage_options} if storage_options else {}
        # a new store's root is created with its marker attribute in one write, so a concurrent writer never
        # sees an unmarked root; while another process is creating it, opening can fail briefly: retry
        create = {} if self.read_only else {"attributes": {"egoflow_store": STORE_FORMAT}}
        check_local_root(self.url, StoreError)
        for attempt in range(20):
            try:
                self.root = zarr.open_group(self.url, mode="r" if self.read_only else "a", zarr_format=3,
                                            **create, **kw)
                break
            except (FileNotFoundError, zarr.errors.GroupNotFoundError) as e:
                raise StoreNotFound(f"no feature store at {self.url}") from e
            except (zarr.errors.ContainsGroupError, json.JSONDecodeError, ValueError) as e:
                if attempt == 19:
                    if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
                        raise StoreError(f"{self.url}/zarr.json: corrupt store metadata ({e})") from None
                    raise StoreError(f"{self.url}: cannot open as a Zarr v3 group ({e})") from None
                time.sleep(0.05)
        attrs = dict(self.root.attrs)
        if attrs.get("egoflow_store") is None:
            if self.read_only or any(True for _ in self.root.group_keys()):
                raise StoreError(f"{self.url} is a Zarr group but not an egoflow store (no 'egoflow_store' attr)")
            self.root.update_attributes({"egoflow_store": STORE_FORMAT})
        self.texts = TextSets(self.root, self.url)  # texts/: see texts.py

    def __repr__(self) -> str:
        return f"FeatureStore({self.url!r})"

    # ---------------------------------------------------------------- feature sets
    def feature_sets(self) -> list[str]:
        return sorted(k for k in self.root.group_keys() if k not in RESERVED)

    def feature_set_group(self, name: str) -> SetGroup:
        """The set's Zarr group behind the accessor the store's parts share (layout.py); FeatureSetMissing if absent."""
        try:
            g = self.root[name]
        except KeyError:
            raise FeatureSetMissing(f"feature set {name!r} not in store {self.url}; "
                                    f"have: {self.feature_sets() or 'none'}") from None
        if not isinstance(g, zarr.Group) or name in RESERVED:
            raise FeatureSetMissing(f"{name!r} in {self.url} is not a feature set")
        return SetGroup(name, g)

    def _set_when_created(self, name: str, wait_s: float = 5.0) -> SetGroup:
        """The set's group, waiting briefly while a concurrent writer that won the config claim creates it."""
        t_end = time.monotonic() + wait_s
        while True:
            try:
                return self.feature_set_group(name)
            except FeatureSetMissing:
                if time.monotonic() > t_end:
                    raise
                time.sleep(0.02)

    def feature_set_info(self, name: str) -> dict:
        return self.feature_set_group(name).attrs

    def create_feature_set(self, name: str, extractor: dict, dim: int, dtype: str = "float16") -> str:
        """Create (or reopen) a feature set; return its config hash.

        Reopening with the same extractor config is a no-op; a different config is an error, never an overwrite.
        """
        check_uid(name)
        if np.dtype(dtype) not in (np.float16, np.float32):
            raise StoreError(f"feature set {name!r}: dtype must be float16 or float32, not {dtype}")
        h = config_hash({"extractor": extractor, "dim": int(dim), "dtype": str(np.dtype(dtype))})
        attrs = {"extractor": extractor, "config_hash": h, "dim": int(dim), "dtype": str(np.dtype(dtype)),
                 "egoflow_version": __version__}
        claimed = claim_config(self.root, name, attrs, self.url)  # atomic: one config wins a race of writers
        if claimed.get("config_hash") == h and name not in self.root:
            with contextlib.suppress(zarr.errors.ContainsGroupError):
                self.root.create_group(name, attributes=claimed)  # a writer with the same config made it first
        for have in (claimed, None):  # the claim, then the group's attrs (stores made before claims)
            if have is None:
                have = self._set_when_created(name).attrs
            if have.get("config_hash") != h:
                diff = sorted(k for k in set(extractor) | set(have.get("extractor", {}))
                              if extractor.get(k) != have.get("extractor", {}).get(k))
                raise FeatureSetMismatch(
                    f"feature set {name!r} in {self.url} was made with a different config "
                    f"(hash {have.get('config_hash')} vs {h}; differing keys: {diff or ['dim/dtype']}). "
                    "Use another feature set name.")
        return h

    # ---------------------------------------------------------------- videos
    def videos(self, name: str, include_incomplete: bool = False) -> list[str]:
        """Video uids of a feature set; only complete ones unless ``include_incomplete``."""
        fs = self.feature_set_group(name)
        uids = fs.uids()
        if include_incomplete:
            return uids
        attrs = fs.attrs_of(uids)
        return [u for u, a in zip(uids, attrs) if a and a.get("complete") is True]

    def video_attrs(self, name: str, uid: str) -> dict | None:
        return self.feature_set_group(name).video_attrs(uid)

    def is_complete(self, name: str, uid: str, source: dict | None = None) -> bool:
        """True when ``uid`` is complete and (if given) its recorded source size and mtime match ``source``."""
        a = self.video_attrs(name, uid)
        if not a or a.get("complete") is not True:
            return False
        if source is None:
            return True
        have = a.get("source") or {}
        return all(have.get(k) == source.get(k) for k in ("bytes", "mtime"))

    def write_video(self, name: str, uid: str, feats: np.ndarray, times: np.ndarray,
                    attrs: dict | None = None) -> None:
        """Write one video's ``feats [T, D]`` and ``times [T]``; ``complete`` is set only after both are stored."""
        check_uid(uid)
        fs = self.feature_set_group(name)
        info = fs.attrs
        feats, times = np.asarray(feats), np.asarray(times, dtype=np.float64)
        where = f"{self.url}/{name}/{uid}"
        if feats.ndim != 2 or feats.shape[1] != info["dim"]:
            raise StoreError(f"{where}: feats must be [T, {info['dim']}], got {list(feats.shape)}")
        if times.shape != (feats.shape[0],) or feats.shape[0] == 0:
            raise StoreError(f"{where}: times must be [T] with T = {feats.shape[0]} > 0, got {list(times.shape)}")
        if not np.isfinite(feats).all() or not np.isfinite(times).all():
            raise StoreError(f"{where}: feats/times contain NaN or inf")
        if np.any(np.diff(times) < 0):
            raise StoreError(f"{where}: times must be non-decreasing")
        T, D = feats.shape
        meta = dict(attrs or {})
        meta.update(num_steps=int(T), complete=False)
        meta.pop("failure", None)
        g = fresh_video_group(fs, uid, meta)
        zstd = [ZstdCodec(level=self.compression_level)]
        rows = min(T, self.chunk_rows)
        g.create_array("feats", data=feats.astype(info["dtype"]), chunks=(rows, D), compressors=zstd)
        g.create_array("times", data=times, chunks=(rows,), compressors=zstd)
        g.update_attributes({"complete": True})  # last: the commit point
        drop_pack(fs)  # again: a pack built while this video was being written lacks it

    def record_failure(self, name: str, uid: str, stage: str, reason: str, source: dict | None = None) -> None:
        """Record that ``uid`` failed at ``stage`` (``open``, ``decode``, ``encode``, ``write``) and why."""
        check_uid(uid)
        failure = {"stage": stage, "reason": str(reason), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        fresh_video_group(self.feature_set_group(name), uid, {"complete": False, "failure": failure, "source": source})

    def failures(self, name: str) -> list[dict]:
        fs = self.feature_set_group(name)
        out = []
        for uid in fs.uids():
            a = fs.video_attrs(uid)
            if a and a.get("failure") and a.get("complete") is not True:
                out.append({"video_uid": uid, **a["failure"], "source": (a.get("source") or {}).get("path")})
        return out

    def claim(self, name: str, what: str) -> str | None:
        """Claim video ``what`` (or the pack) of set ``name`` for this writer: a token, or None when another live
        writer holds it (see claims.py). Release with :meth:`release`."""
        return claims.acquire(self.feature_set_group(name).group, what)

    def release(self, name: str, what: str, token: str | None) -> None:
        claims.release(self.feature_set_group(name).group, what, token)

    def delete_video(self, name: str, uid: str) -> None:
        fs = self.feature_set_group(name)
        if uid in fs.uids():
            drop_pack(fs)
            remove_video(fs, uid)

    def read_video(self, name: str, uid: str) -> VideoFeatures:
        fs = self.feature_set_group(name)
        a = fs.video_attrs(uid)
        if not a or a.get("complete") is not True:
            state = "absent" if a is None else "not complete"
            raise VideoMissing(f"video {uid!r} is {state} in feature set {name!r} of {self.url}")
        g = fs.group[uid]
        raw = g["feats"][:]
        feats = np.empty(raw.shape, np.float32)
        to_float32(feats, raw, optional_torch())
        times = np.asarray(g["times"][:], dtype=np.float64)
        return VideoFeatures(feats, times, a)

    def load_feature_set(self, name: str, video_uids: Iterable[str] | None = None,
                         workers: int = 16) -> dict[str, VideoFeatures]:
        """Load whole per-video arrays into memory, many videos at once.

        A fresh packed copy (``pack``) is read in a few large chunks; otherwise per video: Zarr access is
        latency-bound (~1 ms per metadata/chunk read), so reads are issued from a thread pool.
        """
        packed = load_packed(self.feature_set_group(name), video_uids)
        if packed is not None:
            return packed
        uids = self.videos(name) if video_uids is None else list(video_uids)
        with ThreadPoolExecutor(workers) as ex:
            return dict(zip(uids, ex.map(lambda u: self.read_video(name, u), uids)))

    def pack(self, name: str, chunk_rows: int = 4096) -> dict:
        """Write a packed copy of the complete videos for fast ``load_feature_set`` (see packed.py).

        One packer at a time: while another writer packs the set, this returns ``{"skipped": "..."}``.
        """
        token = self.claim(name, claims.PACK_CLAIM)
        if token is None:
            return {"videos": 0, "rows": 0, "skipped": "another writer is packing this set"}
        try:
            return pack_feature_set(self.feature_set_group(name), lambda uids: self.load_feature_set(name, uids),
                                    chunk_rows)
        finally:
            self.release(name, claims.PACK_CLAIM, token)

    # ---------------------------------------------------------------- summaries
    def info(self, name: str) -> dict:
        """Counts and totals for ``egoflow store info``."""
        fs = self.feature_set_group(name)
        uids = fs.uids()
        attrs = fs.attrs_of(uids)
        done = [a for a in attrs if a and a.get("complete") is True]
        failed = [a for a in attrs if a and a.get("failure") and a.get("complete") is not True]
        return {
            "feature_set": name, **{k: v for k, v in fs.attrs.items() if k != "extractor"},
            "extractor": fs.attrs.get("extractor"),
            "videos_complete": len(done), "videos_failed": len(failed),
            "videos_incomplete": len(attrs) - len(done) - len(failed),
            "hours": sum(float(a.get("duration_s") or 0.0) for a in done) / 3600.0,
            "steps": sum(int(a.get("num_steps", 0)) for a in done),
            "claims": claims.holders(fs.group),  # videos being written right now (stale: a killed writer's)
        }

    def verify(self) -> list[str]:
        """Check every complete video's arrays against its attributes; return the problems found."""
        problems = verify_videos(self)  # arrays, shapes, steps vs duration (conditioned clips too)
        return problems + self.texts.verify()

    # ---------------------------------------------------------------- text sets (texts.py)
    def text_sets(self) -> list[str]:
        return self.texts.names()

    def text_set_info(self, text_set: str) -> dict:
        return self.texts.info(text_set)

    def text_set_has_tokens(self, text_set: str) -> bool | None:
        """Whether ``text_set`` holds token sequences (not only pooled vectors); None while it is empty."""
        return self.texts.has_tokens(text_set)

    def write_texts(self, text_set: str, strings: list[str], pooled: np.ndarray, tokens: np.ndarray | None = None,
                    lengths: np.ndarray | None = None, config: dict | None = None) -> int:
        """Add embeddings of ``strings`` to ``text_set``; strings already present are skipped. Returns #added."""
        return self.texts.write(text_set, strings, pooled, tokens, lengths, config)

    def has_texts(self, text_set: str, strings: list[str]) -> list[bool]:
        return self.texts.has(text_set, strings)

    def load_texts(self, text_set: str, strings: list[str]) -> TextFeatures:
        """Embeddings of ``strings`` in order; KeyError naming the strings that were never encoded."""
        return self.texts.load(text_set, strings)

    def num_texts(self, text_set: str) -> int:
        """Number of distinct strings with an embedding in ``text_set`` (0 when the set does not exist)."""
        return len(self.texts.lookup(text_set))


# errors and helpers are re-exported: callers import them from here as before
__all__ = ["FeatureStore", "check_uid", "VideoFeatures", "TextFeatures", "StoreError", "FeatureSetMissing",
           "FeatureSetMismatch", "VideoMissing", "config_hash"]
