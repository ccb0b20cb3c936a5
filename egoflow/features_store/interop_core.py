"""The interop core shared by the .pt and HDF5 formats (see interop.py): errors, the import report, the time
rule for files without timestamps, per-entry checks, the one import loop, and the export sidecar.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egoflow.features_store.errors import StoreError
from egoflow.features_store.layout import check_uid
from egoflow.features_store.store import FeatureStore

SIDECAR = "egoflow_export.json"
FEATURE_KEYS = ("feats", "features", "feature", "video_features", "embeddings", "x")  # dict/group keys we accept
TIME_KEYS = ("times", "timestamps")


class InteropError(StoreError):
    """A file or entry to import (or a place to export to) is unusable; the message names it and says why."""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # uids written
    skipped: list[str] = field(default_factory=list)  # uids already complete in the store
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file or entry, reason)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return f"imported {len(self.imported)}, skipped {len(self.skipped)}, failed {len(self.failed)}"


def step_times(num_steps: int, fps: float | None = None, window_frames: int | None = None,
               stride_frames: int | None = None, source_fps: float = 30.0,
               duration_s: float | None = None) -> np.ndarray:
    """Times ``[T]`` (seconds, centre of each step) for features stored without them.

    Window features (Ego4D SlowFast/Omnivore: W=32, S=16 at 30 fps): step i sees frames ``[S i, S i + W)``, so
    its centre is ``(S i + W / 2) / source_fps``. Ego4D backs the last window up to end at the last frame when
    the frame count is not a multiple of S; with ``duration_s`` known the last centre is clamped accordingly.
    Frame features sampled at ``fps``: step i stands for ``[i / fps, (i + 1) / fps)``, centre ``(i + 0.5) / fps``.
    """
    i = np.arange(num_steps, dtype=np.float64)
    if window_frames:
        stride = stride_frames or window_frames
        t = (stride * i + window_frames / 2.0) / source_fps
        if duration_s is not None and num_steps:
            last = max(duration_s - window_frames / 2.0 / source_fps, t[-2] if num_steps > 1 else 0.0)
            t[-1] = min(t[-1], last)
        return t
    if not fps or fps <= 0:
        raise InteropError("times are not in the file: give fps (frame features) or window/stride frames")
    return (i + 0.5) / fps


def _times_to_json(times: np.ndarray) -> dict | list:
    """Regular times as {t0, step, count} (keeps the sidecar small for long videos), else the full list."""
    if len(times) > 1:
        step = float(times[1] - times[0])
        if step > 0 and np.allclose(times, times[0] + step * np.arange(len(times)), rtol=0, atol=1e-9):
            return {"t0": float(times[0]), "step": step, "count": len(times)}
    return [float(t) for t in times]


def _times_from_json(t) -> np.ndarray:
    if isinstance(t, dict):
        return t["t0"] + t["step"] * np.arange(int(t["count"]), dtype=np.float64)
    return np.asarray(t, dtype=np.float64)


def _check(feats: np.ndarray, times: np.ndarray | None, dim: int | None, where: str) -> None:
    if feats.ndim != 2:
        raise InteropError(f"{where}: features must be [T, D], got shape {list(feats.shape)}")
    if not np.issubdtype(feats.dtype, np.floating):
        raise InteropError(f"{where}: features must be floating point, got {feats.dtype}")
    if feats.shape[0] == 0:
        raise InteropError(f"{where}: no steps (T = 0)")
    if dim is not None and feats.shape[1] != dim:
        raise InteropError(f"{where}: dim {feats.shape[1]} != the feature set's {dim}")
    if not np.isfinite(feats).all():
        raise InteropError(f"{where}: features contain NaN or inf")
    if times is not None and (times.shape != (feats.shape[0],) or not np.isfinite(times).all()
                              or np.any(np.diff(times) < 0)):
        raise InteropError(f"{where}: times must be [T = {feats.shape[0]}] finite and non-decreasing")


@dataclass
class Entry:
    uid: str
    where: str  # file or file:/group, for messages
    load: Callable[[], tuple[np.ndarray, np.ndarray | None, dict]]  # -> feats, times or None, attrs
    source: dict | None = None


def run_import(store: FeatureStore, feature_set: str, entries: list[Entry], *, side: dict | None,
                fps: float | None, extractor: dict | None, window_frames: int | None, stride_frames: int | None,
                source_fps: float, durations: dict | None, dtype: str | None, skip_existing: bool,
                fmt: str) -> ImportReport:
    rep = ImportReport()
    info = side.get("feature_set_info", {}) if side else {}
    vids = side.get("videos", {}) if side else {}
    exists = feature_set in store.feature_sets()
    dim = store.feature_set_info(feature_set)["dim"] if exists else info.get("dim")
    have = set(store.videos(feature_set)) if exists else set()
    pending: dict[str, tuple] = {}
    if dim is None:  # a fresh set with no sidecar: the first readable file fixes the dim
        for e in entries:
            try:
                f, t, a = e.load()
                _check(f, t, None, e.where)
                dim, pending[e.where] = int(f.shape[1]), (f, t, a)
                break
            except Exception as err:  # noqa: BLE001 - reported below with the others
                pending[e.where] = err
        if dim is None:
            raise InteropError(f"no usable features among {len(entries)} entries; first error: "
                               f"{next(iter(pending.values()), 'no entries')}")
    if extractor is None:
        extractor = info.get("extractor") or {"encoder": "imported", "format": fmt, "fps": fps,
                                              "window_frames": window_frames, "stride_frames": stride_frames,
                                              "source_fps": source_fps if window_frames else None}
    store.create_feature_set(feature_set, extractor, int(dim), dtype or info.get("dtype", "float16"))
    for e in entries:
        if skip_existing and e.uid in have:
            rep.skipped.append(e.uid)
            continue
        try:
            check_uid(e.uid)
            got = pending.pop(e.where, None)
            if isinstance(got, Exception):
                raise got
            feats, times, attrs = got if got is not None else e.load()
            meta = vids.get(e.uid, {})
            if times is None and "times" in meta:
                times = _times_from_json(meta["times"])
            vfps = (attrs.get("fps") or meta.get("fps")
                    or (source_fps / (stride_frames or window_frames) if window_frames else fps))
            if times is None:
                times = step_times(len(feats), vfps, window_frames, stride_frames, source_fps,
                                   (durations or {}).get(e.uid))
            _check(feats, times, int(dim), e.where)
            out = {**meta.get("attrs", {}), **attrs, "fps": vfps, "imported_from": e.where}
            if window_frames and "window" not in out:
                out["window"] = {"frames": window_frames, "stride": stride_frames or window_frames,
                                 "source_fps": source_fps}
            if "duration_s" not in out:  # end of the last step: half a window / half a frame past its centre
                half = window_frames / 2.0 / source_fps if window_frames else (0.5 / vfps if vfps else 0.0)
                out["duration_s"] = float((durations or {}).get(e.uid, times[-1] + half))
            out["source"] = out.get("source") or e.source
            store.write_video(feature_set, e.uid, feats, times, out)
            rep.imported.append(e.uid)
        except Exception as err:  # noqa: BLE001 - one bad file never stops the import
            reason = str(err) if isinstance(err, StoreError) else f"{e.where}: {type(err).__name__}: {err}"
            rep.failed.append((e.where, reason))
            try:  # never overwrite a good video with a failure record
                if e.uid not in have:
                    store.record_failure(feature_set, e.uid, "import", reason, source=e.source)
            except StoreError:
                pass  # uid unusable as a store key: the report is all we can do
    return rep


def file_source(p: Path) -> dict:
    st = p.stat()
    return {"path": str(p), "bytes": st.st_size, "mtime": st.st_mtime}


def read_sidecar(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        side = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InteropError(f"{path}: unreadable sidecar ({err}); move it away to import without it") from None
    if not isinstance(side, dict) or side.get("egoflow_export") != 1:
        raise InteropError(f"{path}: not an egoflow export sidecar")
    return side


def select_uids(store: FeatureStore, feature_set: str, video_uids: Iterable[str] | None) -> list[str]:
    return store.videos(feature_set) if video_uids is None else list(video_uids)


def iter_videos(store: FeatureStore, feature_set: str, uids: list[str], batch: int = 64):
    """Videos in order, read ``batch`` at a time concurrently (memory stays bounded for big sets)."""
    for i in range(0, len(uids), batch):
        yield from store.load_feature_set(feature_set, uids[i:i + batch]).items()


def sidecar_entry(vf) -> dict:
    attrs = {k: v for k, v in vf.attrs.items() if k not in ("complete", "num_steps", "failure")}
    return {"fps": vf.attrs.get("fps"), "num_steps": len(vf.times), "times": _times_to_json(vf.times),
            "attrs": attrs}
