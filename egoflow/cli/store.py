"""`egoflow store ls|info|verify|pack|export|import`: look after a feature store."""
from __future__ import annotations

import json
from pathlib import Path

from egoflow.cli.args import add_storage_args


def cmd_store(a) -> int:
    from egoflow.features_store import FeatureStore

    store = FeatureStore(a.store, mode="r")
    if a.action == "ls":
        for name in store.feature_sets():
            print(f"{name}\t{len(store.videos(name))} videos")
        for name in store.text_sets():
            print(f"texts/{name}")
        return 0
    if a.action == "info":
        names = [a.feature_set] if a.feature_set else store.feature_sets()
        for name in names:
            info = store.info(name)
            if a.json:
                print(json.dumps(info, indent=1))
                continue
            print(f"{name}: {info['videos_complete']} complete, {info['videos_failed']} failed, "
                  f"{info['videos_incomplete']} incomplete | {info['hours']:.3f} h | {info['steps']} steps x "
                  f"{info['dim']} ({info['dtype']}) | hash {info['config_hash']}")
            print("  extractor: " + json.dumps(info["extractor"], sort_keys=True))
            for c in info.get("claims", []):
                print(f"  {'STALE CLAIM' if c['stale'] else 'being written'}: {c['name']} by {c['host']} "
                      f"pid {c['pid']}")
            for f in store.failures(name):
                print(f"  FAILED {f['video_uid']} [{f['stage']}] {f['reason']}")
        for name in store.text_sets():
            print(f"texts/{name}: {store.num_texts(name)} strings")
        return 0
    problems = store.verify()  # verify
    for p in problems:
        print("PROBLEM", p)
    print(f"verify {a.store}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def cmd_store_export(a) -> int:
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.interop import export_hdf5, export_pt

    store = FeatureStore(a.store, mode="r")
    uids = a.videos.split(",") if a.videos else None
    done = (export_pt if a.format == "pt" else export_hdf5)(store, a.feature_set, a.out, uids)
    print(f"exported {len(done)} videos of {a.feature_set} to {a.out} ({a.format})")
    return 0


def cmd_store_import(a) -> int:
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.interop import import_hdf5, import_pt

    store = FeatureStore(a.store)
    extractor = json.loads(Path(a.extractor).read_text() if Path(a.extractor).is_file() else a.extractor) \
        if a.extractor else None
    fn = import_pt if a.format == "pt" else import_hdf5
    rep = fn(store, a.feature_set, a.src, a.fps, extractor, a.window_frames, a.stride_frames, a.source_fps,
             dtype=a.dtype, skip_existing=not a.force)
    if rep.imported:
        store.pack(a.feature_set)  # bulk loads read the packed copy (see docs/store.md, "Loading speed")
    for where, reason in rep.failed:
        print(f"FAILED {where}: {reason}")
    print(f"{a.feature_set}: {rep.summary()}")
    return 0 if rep.ok else 1


def cmd_store_pack(a) -> int:
    from egoflow.features_store import FeatureStore

    store = FeatureStore(a.store)
    for name in [a.feature_set] if a.feature_set else store.feature_sets():
        r = store.pack(name)
        print(f"packed {name}: {r['videos']} videos, {r['rows']} steps")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("store", help="inspect, verify, export or import a feature store")
    ssub = p.add_subparsers(dest="action", required=True)
    for action, hlp in (("ls", "list feature and text sets"), ("info", "counts, hours, failures"),
                        ("verify", "check every complete video's arrays")):
        q = ssub.add_parser(action, help=hlp)
        q.add_argument("--store", required=True)
        if action == "info":
            q.add_argument("--feature-set", default=None)
            q.add_argument("--json", action="store_true")
        add_storage_args(q)
        q.set_defaults(func=cmd_store)
    q = ssub.add_parser("pack", help="write a packed copy of feature sets for fast bulk loading")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", default=None, help="default: every feature set")
    add_storage_args(q)
    q.set_defaults(func=cmd_store_pack)
    q = ssub.add_parser("export", help="write a feature set as one .pt per video or one HDF5 file")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", required=True)
    q.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    q.add_argument("--out", required=True, help="directory (pt) or file (hdf5)")
    q.add_argument("--videos", default=None, help="comma-separated uids (default: all complete videos)")
    add_storage_args(q)
    q.set_defaults(func=cmd_store_export)
    q = ssub.add_parser("import", help="import .pt files or an HDF5 file into a feature set")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", required=True)
    q.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    q.add_argument("--src", required=True, help="directory of <uid>.pt (pt) or file (hdf5)")
    q.add_argument("--fps", type=float, default=None, help="steps per second when the files carry no times")
    q.add_argument("--window-frames", type=int, default=None, help="window features: frames per window (Ego4D 32)")
    q.add_argument("--stride-frames", type=int, default=None, help="window features: frames between windows (16)")
    q.add_argument("--source-fps", type=float, default=30.0, help="frame rate the windows count in")
    q.add_argument("--extractor", default=None, help="extractor config: JSON string or file (default: sidecar)")
    q.add_argument("--dtype", choices=["float16", "float32"], default=None, help="stored dtype (default float16)")
    q.add_argument("--force", action="store_true", help="re-import videos that are already complete")
    add_storage_args(q)
    q.set_defaults(func=cmd_store_import)
