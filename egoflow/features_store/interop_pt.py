"""``.pt`` half of :mod:`egoflow.features_store.interop`: one ``<uid>.pt`` per video plus the export sidecar."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from egoflow.features_store.interop_core import (
    FEATURE_KEYS,
    SIDECAR,
    TIME_KEYS,
    Entry,
    ImportReport,
    InteropError,
    file_source,
    iter_videos,
    read_sidecar,
    run_import,
    select_uids,
    sidecar_entry,
)
from egoflow.features_store.store import FeatureStore


def _to_numpy(x, where: str) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy() if x.dtype == torch.bfloat16 else x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise InteropError(f"{where}: expected a tensor [T, D], got {type(x).__name__}")


def _load_pt(p: Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle/zip errors of all kinds mean the same: unreadable
        raise InteropError(f"{p}: not a readable torch file ({type(err).__name__}: {err})") from None
    times = None
    if isinstance(obj, dict):
        key = next((k for k in FEATURE_KEYS if k in obj), None)
        if key is None:
            raise InteropError(f"{p}: a dict without a feature tensor (looked for {', '.join(FEATURE_KEYS)}; "
                               f"has {', '.join(map(str, list(obj)[:8]))})")
        tkey = next((k for k in TIME_KEYS if k in obj), None)
        times = _to_numpy(obj[tkey], f"{p}[{tkey!r}]").astype(np.float64).reshape(-1) if tkey else None
        obj = obj[key]
    return _to_numpy(obj, str(p)), times, {}


def import_pt(store: FeatureStore, feature_set: str, src_dir, fps: float | None = None,
              extractor: dict | None = None, window_frames: int | None = None, stride_frames: int | None = None,
              source_fps: float = 30.0, *, durations: dict | None = None, dtype: str | None = None,
              skip_existing: bool = True) -> ImportReport:
    """Import every ``<uid>.pt`` of ``src_dir`` (tensor ``[T, D]``, or a dict with one under ``FEATURE_KEYS``).

    Times: the dict's ``times``, else the sidecar's, else :func:`step_times`. ``durations`` (uid -> seconds)
    places Ego4D's backed-up last window. Videos already complete in the set are skipped.
    """
    src = Path(src_dir)
    files = sorted(src.glob("*.pt"))
    if not files:
        raise InteropError(f"{src}: no .pt files")
    side = read_sidecar(src / SIDECAR)
    entries = [Entry(p.stem, str(p), (lambda p=p: _load_pt(p)), file_source(p)) for p in files]
    return run_import(store, feature_set, entries, side=side, fps=fps, extractor=extractor,
                       window_frames=window_frames, stride_frames=stride_frames, source_fps=source_fps,
                       durations=durations, dtype=dtype, skip_existing=skip_existing, fmt="pt")


def export_pt(store: FeatureStore, feature_set: str, out_dir, video_uids: Iterable[str] | None = None,
              dtype: str = "float32") -> list[str]:
    """Write ``<out_dir>/<uid>.pt`` (bare ``[T, D]`` tensor, float32 like Ego4D's) + ``egoflow_export.json``.

    Files appear atomically (write then rename); the sidecar is written last and merges with an earlier export
    of the same set in ``out_dir``. Returns the uids written.
    """
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = store.feature_set_info(feature_set)
    side = read_sidecar(out / SIDECAR) or {}
    if side and side.get("feature_set_info", {}).get("config_hash") != info.get("config_hash"):
        raise InteropError(f"{out}: holds an export of another feature set ({side.get('feature_set')!r})")
    side.update(egoflow_export=1, feature_set=feature_set, feature_set_info=info)
    videos = side.setdefault("videos", {})
    done = []
    for uid, vf in iter_videos(store, feature_set, select_uids(store, feature_set, video_uids)):
        tmp = out / f".{uid}.pt.tmp"
        torch.save(torch.from_numpy(np.ascontiguousarray(vf.feats, dtype=dtype)), tmp)
        os.replace(tmp, out / f"{uid}.pt")
        videos[uid] = sidecar_entry(vf)
        done.append(uid)
    tmp = out / f".{SIDECAR}.tmp"
    tmp.write_text(json.dumps(side, separators=(",", ":")))
    os.replace(tmp, out / SIDECAR)
    return done
