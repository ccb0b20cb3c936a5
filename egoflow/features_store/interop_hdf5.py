"""HDF5 half of :mod:`egoflow.features_store.interop`: one file, a group per video.

Layout written: file attrs ``egoflow_export = 1``, ``feature_set``, ``feature_set_info`` (JSON); per video
``<uid>/feats [T, D]`` (the set's dtype) and ``<uid>/times [T]`` float64, chunked by rows and uncompressed (zstd
saves ~6% on fp16 features and costs read speed), group attrs ``fps`` and ``attrs_json`` (the store's attrs).
Read: the same, or any group with a ``FEATURE_KEYS`` dataset, or a bare ``[T, D]`` dataset per video.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from egoflow.features_store.interop_core import (
    FEATURE_KEYS,
    TIME_KEYS,
    Entry,
    ImportReport,
    InteropError,
    file_source,
    iter_videos,
    run_import,
    select_uids,
    sidecar_entry,
)
from egoflow.features_store.store import FeatureStore


def export_hdf5(store: FeatureStore, feature_set: str, path, video_uids: Iterable[str] | None = None,
                chunk_rows: int = 1024) -> list[str]:
    """Write one HDF5 file: ``<uid>/feats [T, D]`` (the set's dtype) + ``<uid>/times [T]``, config in attrs."""
    import h5py

    info = store.feature_set_info(feature_set)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    done = []
    with h5py.File(tmp, "w") as h:
        h.attrs["egoflow_export"] = 1
        h.attrs["feature_set"] = feature_set
        h.attrs["feature_set_info"] = json.dumps(info)
        for uid, vf in iter_videos(store, feature_set, select_uids(store, feature_set, video_uids)):
            g = h.create_group(uid)
            T, D = vf.feats.shape
            g.create_dataset("feats", data=vf.feats.astype(info["dtype"]), chunks=(min(T, chunk_rows), D))
            g.create_dataset("times", data=vf.times, chunks=(min(T, chunk_rows),))
            e = sidecar_entry(vf)
            g.attrs["fps"] = e["fps"] if e["fps"] is not None else np.nan
            g.attrs["attrs_json"] = json.dumps(e["attrs"])
            done.append(uid)
    os.replace(tmp, path)
    return done


def import_hdf5(store: FeatureStore, feature_set: str, path, fps: float | None = None,
                extractor: dict | None = None, window_frames: int | None = None, stride_frames: int | None = None,
                source_fps: float = 30.0, *, durations: dict | None = None, dtype: str | None = None,
                skip_existing: bool = True) -> ImportReport:
    """Import an HDF5 file: a group per video (``feats`` or another ``FEATURE_KEYS`` name, optional ``times``)
    or a bare ``[T, D]`` dataset per video. Times as in :func:`import_pt`."""
    import h5py

    path = Path(path)
    try:
        h = h5py.File(path, "r")
    except OSError as err:
        raise InteropError(f"{path}: not a readable HDF5 file ({err})") from None
    with h:
        side = None
        if h.attrs.get("egoflow_export") == 1:
            side = {"feature_set_info": json.loads(h.attrs["feature_set_info"]), "videos": {}}
        src = file_source(path)

        def load(uid):
            where = f"{path}:/{uid}"
            node, times, attrs = h[uid], None, {}
            if isinstance(node, h5py.Group):
                key = next((k for k in FEATURE_KEYS if k in node), None)
                if key is None:
                    raise InteropError(f"{where}: group without a features dataset (looked for "
                                       f"{', '.join(FEATURE_KEYS)}; has {', '.join(list(node)[:8])})")
                tkey = next((k for k in TIME_KEYS if k in node), None)
                times = np.asarray(node[tkey][()], dtype=np.float64).reshape(-1) if tkey else None
                if "attrs_json" in node.attrs:
                    attrs = json.loads(node.attrs["attrs_json"])
                if "fps" in node.attrs and np.isfinite(node.attrs["fps"]):
                    attrs["fps"] = float(node.attrs["fps"])
                node = node[key]
            return np.asarray(node[()]), times, attrs

        entries = [Entry(uid, f"{path}:/{uid}", (lambda u=uid: load(u)), src) for uid in sorted(h.keys())]
        if not entries:
            raise InteropError(f"{path}: no videos in the file")
        return run_import(store, feature_set, entries, side=side, fps=fps, extractor=extractor,
                           window_frames=window_frames, stride_frames=stride_frames, source_fps=source_fps,
                           durations=durations, dtype=dtype, skip_existing=skip_existing, fmt="hdf5")
