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

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.sync import sync as _sync

from egoflow import __version__
from egoflow.features_store import claims
from egoflow.features_store.consistency import check_local_root, claim_config, verify_videos
from egoflow.features_store.packed import _torch, drop_pack, load_packed, pack_feature_set, to_float32
from egoflow.features_store.texts import TextFeatures, TextStoreMixin

STORE_FORMAT = 1
RESERVED = {"texts"}  # top-level names that are not feature sets
_UID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StoreError(Exception):
    """Base class for feature store errors."""


class FeatureSetMissing(StoreError, KeyError):
    pass


class FeatureSetMismatch(StoreError):
    pass


class VideoMissing(StoreError, KeyError):
    pass


@dataclass
class VideoFeatures:
    """Features of one video: ``feats [T, D]`` float32, ``times [T]`` float64 seconds, group ``attrs``."""

    feats: np.ndarray
    times: np.ndarray
    attrs: dict = field(default_factory=dict)

    def slice(self, start_sec: float, end_sec: float) -> "VideoFeatures":
        """Steps whose times lie in ``[start_sec, end_sec]`` (video time), with times shifted to clip time."""
        keep = (self.times >= start_sec) & (self.times <= end_sec)
        return VideoFeatures(self.feats[keep], self.times[keep] - start_sec, dict(self.attrs))


async def _list_dir(store, prefix: str) -> list[str]:
    return [k async for k in store.list_dir(prefix)]


def config_hash(config: dict) -> str:
    """Stable hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_uid(uid: str) -> str:
    if not isinstance(uid, str) or not _UID_RE.match(uid) or uid in RESERVED:
        raise StoreError(f"invalid video uid {uid!r}: use letters, digits, '.', '_' or '-' (not starting with one)")
    return uid


class FeatureStore(TextStoreMixin):
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
                raise StoreError(f"no feature store at {self.url}") from e
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
        self._text_index: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"FeatureStore({self.url!r})"

    # ---------------------------------------------------------------- feature sets
    def feature_sets(self) -> list[str]:
        return sorted(k for k in self.root.group_keys() if k not in RESERVED)

    def _set(self, name: str) -> zarr.Group:
        try:
            g = self.root[name]
        except KeyError:
            raise FeatureSetMissing(f"feature set {name!r} not in store {self.url}; "
                                    f"have: {self.feature_sets() or 'none'}") from None
        if not isinstance(g, zarr.Group) or name in RESERVED:
            raise FeatureSetMissing(f"{name!r} in {self.url} is not a feature set")
        return g

    def _set_when_created(self, name: str, wait_s: float = 5.0) -> zarr.Group:
        """``_set``, waiting briefly while a concurrent writer that won the claim is still creating the group."""
        t_end = time.monotonic() + wait_s
        while True:
            try:
                return self._set(name)
            except FeatureSetMissing:
                if time.monotonic() > t_end:
                    raise
                time.sleep(0.02)

    def feature_set_info(self, name: str) -> dict:
        return dict(self._set(name).attrs)

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
        claimed = claim_config(self.root, name, attrs, self.url)
        if claimed.get("config_hash") == h and name not in self.root:
            try:
                self.root.create_group(name, attributes=claimed)
            except zarr.errors.ContainsGroupError:
                pass  # a writer with the same config made it first
        for have in (claimed, None):  # the claim, then the group's attrs (stores made before claims)
            if have is None:
                have = dict(self._set_when_created(name).attrs)
            if have.get("config_hash") != h:
                diff = sorted(k for k in set(extractor) | set(have.get("extractor", {}))
                              if extractor.get(k) != have.get("extractor", {}).get(k))
                raise FeatureSetMismatch(
                    f"feature set {name!r} in {self.url} was made with a different config "
                    f"(hash {have.get('config_hash')} vs {h}; differing keys: {diff or ['dim/dtype']}). "
                    "Use another feature set name.")
        return h

    # ---------------------------------------------------------------- videos
    def _video_attrs(self, fs: zarr.Group, uid: str) -> dict | None:
        """Attributes of a video group, or None when it is absent or its metadata is unreadable (killed writer)."""
        try:
            return dict(fs[uid].attrs)
        except (KeyError, ValueError, json.JSONDecodeError, zarr.errors.BaseZarrError):
            return None

    def _attrs_of(self, fs: zarr.Group, uids: list[str]) -> list[dict | None]:
        """Attributes of many videos at once (each read is latency-bound, so they are issued concurrently)."""
        with ThreadPoolExecutor(16) as ex:
            return list(ex.map(lambda u: self._video_attrs(fs, u), uids))

    def _uids(self, fs: zarr.Group) -> list[str]:
        """Child names from a directory listing: never parses children, so one corrupt video can't hide others."""
        # "_packed" (packed.py) and other "_" names are not videos: check_uid never allows a leading "_"
        return sorted(k for k in _sync(_list_dir(fs.store, fs.path)) if k != "zarr.json" and not k.startswith("_"))

    def videos(self, name: str, include_incomplete: bool = False) -> list[str]:
        """Video uids of a feature set; only complete ones unless ``include_incomplete``."""
        fs = self._set(name)
        uids = self._uids(fs)
        if include_incomplete:
            return uids
        attrs = self._attrs_of(fs, uids)
        return [u for u, a in zip(uids, attrs) if a and a.get("complete") is True]

    def video_attrs(self, name: str, uid: str) -> dict | None:
        return self._video_attrs(self._set(name), uid)

    def is_complete(self, name: str, uid: str, source: dict | None = None) -> bool:
        """True when ``uid`` is complete and (if given) its recorded source size and mtime match ``source``."""
        a = self.video_attrs(name, uid)
        if not a or a.get("complete") is not True:
            return False
        if source is None:
            return True
        have = a.get("source") or {}
        return all(have.get(k) == source.get(k) for k in ("bytes", "mtime"))

    def _fresh_group(self, fs: zarr.Group, uid: str, attrs: dict) -> zarr.Group:
        drop_pack(self, fs)  # the set changes: its packed copy is stale
        if uid in self._uids(fs):  # an earlier incomplete/failed/stale attempt (maybe corrupt): redo from scratch
            self._remove_video(fs, uid)
        return fs.create_group(uid, attributes=attrs)

    def _remove_video(self, fs: zarr.Group, uid: str) -> None:
        """Delete a video's group: "complete" is cleared FIRST, so a kill during the removal (which deletes
        files in no particular order) leaves an incomplete video to redo, never a complete one without arrays."""
        if (self._video_attrs(fs, uid) or {}).get("complete") is True:
            fs[uid].update_attributes({"complete": False})
        _sync(fs.store.delete_dir(f"{fs.path}/{uid}"))

    def write_video(self, name: str, uid: str, feats: np.ndarray, times: np.ndarray,
                    attrs: dict | None = None) -> None:
        """Write one video's ``feats [T, D]`` and ``times [T]``; ``complete`` is set only after both are stored."""
        check_uid(uid)
        fs = self._set(name)
        info = dict(fs.attrs)
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
        g = self._fresh_group(fs, uid, meta)
        zstd = [ZstdCodec(level=self.compression_level)]
        rows = min(T, self.chunk_rows)
        g.create_array("feats", data=feats.astype(info["dtype"]), chunks=(rows, D), compressors=zstd)
        g.create_array("times", data=times, chunks=(rows,), compressors=zstd)
        g.update_attributes({"complete": True})  # last: the commit point
        drop_pack(self, fs)  # again: a pack built while this video was being written lacks it

    def record_failure(self, name: str, uid: str, stage: str, reason: str, source: dict | None = None) -> None:
        """Record that ``uid`` failed at ``stage`` (``open``, ``decode``, ``encode``, ``write``) and why."""
        check_uid(uid)
        failure = {"stage": stage, "reason": str(reason), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._fresh_group(self._set(name), uid, {"complete": False, "failure": failure, "source": source})

    def failures(self, name: str) -> list[dict]:
        fs = self._set(name)
        out = []
        for uid in self._uids(fs):
            a = self._video_attrs(fs, uid)
            if a and a.get("failure") and a.get("complete") is not True:
                out.append({"video_uid": uid, **a["failure"], "source": (a.get("source") or {}).get("path")})
        return out

    def claim(self, name: str, what: str) -> str | None:
        """Claim video ``what`` (or the pack) of set ``name`` for this writer: a token, or None when another live
        writer holds it (see claims.py). Release with :meth:`release`."""
        return claims.acquire(self._set(name), what)

    def release(self, name: str, what: str, token: str | None) -> None:
        claims.release(self._set(name), what, token)

    def delete_video(self, name: str, uid: str) -> None:
        fs = self._set(name)
        if uid in self._uids(fs):
            drop_pack(self, fs)
            self._remove_video(fs, uid)

    def read_video(self, name: str, uid: str) -> VideoFeatures:
        fs = self._set(name)
        a = self._video_attrs(fs, uid)
        if not a or a.get("complete") is not True:
            state = "absent" if a is None else "not complete"
            raise VideoMissing(f"video {uid!r} is {state} in feature set {name!r} of {self.url}")
        g = fs[uid]
        raw = g["feats"][:]
        feats = np.empty(raw.shape, np.float32)
        to_float32(feats, raw, _torch())
        times = np.asarray(g["times"][:], dtype=np.float64)
        return VideoFeatures(feats, times, a)

    def load_feature_set(self, name: str, video_uids: Iterable[str] | None = None,
                         workers: int = 16) -> dict[str, VideoFeatures]:
        """Load whole per-video arrays into memory, many videos at once.

        A fresh packed copy (``pack``) is read in a few large chunks; otherwise per video: Zarr access is
        latency-bound (~1 ms per metadata/chunk read), so reads are issued from a thread pool.
        """
        packed = load_packed(self, name, video_uids)
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
            return pack_feature_set(self, name, chunk_rows)
        finally:
            self.release(name, claims.PACK_CLAIM, token)

    # ---------------------------------------------------------------- summaries
    def info(self, name: str) -> dict:
        """Counts and totals for ``egoflow store info``."""
        fs = self._set(name)
        uids = self._uids(fs)
        attrs = self._attrs_of(fs, uids)
        done = [a for a in attrs if a and a.get("complete") is True]
        failed = [a for a in attrs if a and a.get("failure") and a.get("complete") is not True]
        return {
            "feature_set": name, **{k: v for k, v in fs.attrs.items() if k != "extractor"},
            "extractor": dict(fs.attrs).get("extractor"),
            "videos_complete": len(done), "videos_failed": len(failed),
            "videos_incomplete": len(attrs) - len(done) - len(failed),
            "hours": sum(float(a.get("duration_s") or 0.0) for a in done) / 3600.0,
            "steps": sum(int(a.get("num_steps", 0)) for a in done),
            "claims": claims.holders(fs),  # videos being written right now (stale: a killed writer's)
        }

    def verify(self) -> list[str]:
        """Check every complete video's arrays against its attributes; return the problems found."""
        return verify_videos(self) + self._verify_texts()

__all__ = ["FeatureStore", "VideoFeatures", "TextFeatures", "StoreError", "FeatureSetMissing",
           "FeatureSetMismatch", "VideoMissing", "config_hash"]
