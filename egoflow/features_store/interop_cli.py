"""``egoflow store export|import|pack``: argparse wiring for interop (each ``func(args)`` returns an exit code)."""
from __future__ import annotations

import json
from pathlib import Path

from egoflow.features_store.interop import export_pt, import_pt
from egoflow.features_store.interop_hdf5 import export_hdf5, import_hdf5
from egoflow.features_store.store import FeatureStore


def _cmd_export(a) -> int:
    store = FeatureStore(a.store, mode="r")
    uids = a.videos.split(",") if a.videos else None
    fn = export_pt if a.format == "pt" else export_hdf5
    done = fn(store, a.feature_set, a.out, uids)
    print(f"exported {len(done)} videos of {a.feature_set} to {a.out} ({a.format})")
    return 0


def _cmd_import(a) -> int:
    store = FeatureStore(a.store)
    extractor = json.loads(Path(a.extractor).read_text() if Path(a.extractor).is_file() else a.extractor) \
        if a.extractor else None
    fn = import_pt if a.format == "pt" else import_hdf5
    rep = fn(store, a.feature_set, a.src, a.fps, extractor, a.window_frames, a.stride_frames, a.source_fps,
             dtype=a.dtype, skip_existing=not a.force)
    if rep.imported and hasattr(store, "pack"):
        store.pack(a.feature_set)  # bulk loads read the packed copy (see docs/store.md, "Loading speed")
    for where, reason in rep.failed:
        print(f"FAILED {where}: {reason}")
    print(f"{a.feature_set}: {rep.summary()}")
    return 0 if rep.ok else 1


def _cmd_pack(a) -> int:
    store = FeatureStore(a.store)
    for name in [a.feature_set] if a.feature_set else store.feature_sets():
        r = store.pack(name)
        print(f"packed {name}: {r['videos']} videos, {r['rows']} steps")
    return 0


def register(store_subparsers) -> None:
    """Add ``export``, ``import`` (and ``pack`` when the store has it) to ``egoflow store`` (``func(args) -> rc``)."""
    if hasattr(FeatureStore, "pack") and "pack" not in store_subparsers.choices:
        p = store_subparsers.add_parser("pack", help="write a packed copy of feature sets for fast bulk loading")
        p.add_argument("--store", required=True)
        p.add_argument("--feature-set", default=None, help="default: every feature set")
        p.set_defaults(func=_cmd_pack)
    p = store_subparsers.add_parser("export", help="write a feature set as one .pt per video or one HDF5 file")
    p.add_argument("--store", required=True)
    p.add_argument("--feature-set", required=True)
    p.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    p.add_argument("--out", required=True, help="directory (pt) or file (hdf5)")
    p.add_argument("--videos", default=None, help="comma-separated uids (default: all complete videos)")
    p.set_defaults(func=_cmd_export)
    p = store_subparsers.add_parser("import", help="import .pt files or an HDF5 file into a feature set")
    p.add_argument("--store", required=True)
    p.add_argument("--feature-set", required=True)
    p.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    p.add_argument("--src", required=True, help="directory of <uid>.pt (pt) or file (hdf5)")
    p.add_argument("--fps", type=float, default=None, help="steps per second when the files carry no times")
    p.add_argument("--window-frames", type=int, default=None, help="window features: frames per window (Ego4D 32)")
    p.add_argument("--stride-frames", type=int, default=None, help="window features: frames between windows (16)")
    p.add_argument("--source-fps", type=float, default=30.0, help="frame rate the windows count in")
    p.add_argument("--extractor", default=None, help="extractor config: JSON string or file (default: sidecar)")
    p.add_argument("--dtype", choices=["float16", "float32"], default=None, help="stored dtype (default float16)")
    p.add_argument("--force", action="store_true", help="re-import videos that are already complete")
    p.set_defaults(func=_cmd_import)
