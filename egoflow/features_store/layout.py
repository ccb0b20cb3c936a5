"""The store's Zarr internals in one place: uid rules, config hashes, and ``SetGroup``, the accessor through
which the store, its packed copies (packed.py) and its exports read one feature set's group.

A set's children are listed from the store's directory listing and never parsed, so one corrupt video group
(a killed writer) cannot hide the others; per-video attribute reads are latency-bound, so many are issued at
once.
"""
from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import zarr
from zarr.core.sync import sync

from egoflow.features_store.errors import StoreError

RESERVED = {"texts"}  # top-level names that are not feature sets
_UID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class VideoFeatures:
    """Features of one video: ``feats [T, D]`` float32, ``times [T]`` float64 seconds, group ``attrs``."""

    feats: np.ndarray
    times: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds of video: the ``duration_s`` attr, else the last step time plus one (median) step."""
        d = (self.attrs or {}).get("duration_s")
        if d:
            return float(d)
        step = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        return float(self.times[-1] + step) if len(self.times) else 0.0

    def slice(self, start_sec: float, end_sec: float) -> VideoFeatures:
        """Steps whose times lie in ``[start_sec, end_sec]`` (video time), with times shifted to clip time."""
        keep = (self.times >= start_sec) & (self.times <= end_sec)
        return VideoFeatures(self.feats[keep], self.times[keep] - start_sec, dict(self.attrs))


def config_hash(config: dict) -> str:
    """Stable hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_uid(uid: str) -> str:
    if not isinstance(uid, str) or not _UID_RE.match(uid) or uid in RESERVED:
        raise StoreError(f"invalid video uid {uid!r}: use letters, digits, '.', '_' or '-' (not starting with one)")
    return uid


async def _list_dir(store, prefix: str) -> list[str]:
    return [k async for k in store.list_dir(prefix)]


@dataclass
class SetGroup:
    """One feature set's Zarr group and the reads/deletes the store and its packed copy make on it."""

    name: str  # feature set name
    group: zarr.Group  # <store>/<name>

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    def uids(self) -> list[str]:
        """Child names from a directory listing: never parses children, so one corrupt video can't hide others."""
        # "_packed" (packed.py) and other "_" names are not videos: check_uid never allows a leading "_"
        fs = self.group
        return sorted(k for k in sync(_list_dir(fs.store, fs.path)) if k != "zarr.json" and not k.startswith("_"))

    def video_attrs(self, uid: str) -> dict | None:
        """Attributes of a video group, or None when it is absent or its metadata is unreadable (killed writer)."""
        try:
            return dict(self.group[uid].attrs)
        except (KeyError, ValueError, json.JSONDecodeError, zarr.errors.BaseZarrError):
            return None

    def attrs_of(self, uids: list[str]) -> list[dict | None]:
        """Attributes of many videos at once (each read is latency-bound, so they are issued concurrently)."""
        with ThreadPoolExecutor(16) as ex:
            return list(ex.map(self.video_attrs, uids))

    def delete(self, child: str) -> None:
        """Remove a child group (a video or the pack) with everything under it; absent is fine."""
        sync(self.group.store.delete_dir(f"{self.group.path}/{child}"))


def optional_torch():
    """torch when installed (faster fp16 -> fp32), else None."""
    try:
        import torch

        return torch
    except ImportError:
        return None


def to_float32(dst: np.ndarray, src: np.ndarray, torch=None) -> None:
    """``dst[...] = src`` for ``[T, D]`` arrays (fp16 -> fp32).

    torch converts with F16C, ~8x numpy's half->float loop. Slices of <= 32768 elements stay under torch's
    parallel grain size, so it never starts an OpenMP team per calling thread: those spin and stall badly
    when the cores are shared (measured 3 s instead of 0.2 s for 60M elements on 2 busy cores).
    """
    if torch is None or src.dtype != np.float16 or src.ndim != 2:
        dst[...] = src
        return
    td, ts = torch.from_numpy(dst), torch.from_numpy(np.ascontiguousarray(src))
    step = max(1, 32768 // max(1, src.shape[1]))
    for s in range(0, len(src), step):
        td[s:s + step].copy_(ts[s:s + step])
