"""`egoflow segment`: kernel temporal segmentation (KTS) of one video of a feature store.

    egoflow segment --store S --feature-set F VIDEO_UID [--shot-seconds 5] [--lmax 200] [--max-change-points M]
                    [--vmax 1.0] [--kernel cosine] [--out segments.json]

Store steps are averaged into shots of ``--shot-seconds`` (0: use the steps as they are), KTS runs on the shots,
and the segments are printed (and written with ``--out``) as JSON in seconds of video time.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def segment_video(store, feature_set: str, video_uid: str, shot_seconds: float = 5.0, lmax: int | None = None,
                  max_change_points: int | None = None, vmax: float = 1.0, kernel: str = "cosine") -> dict:
    """KTS of one stored video -> {"video_uid", "num_shots", "boundaries" (shot indices), "segments" [[s, e]] sec}."""
    from egoflow.features_store import FeatureStore
    from egoflow.segment import kts
    from egoflow.segment.shots import shot_features

    store = store if hasattr(store, "read_video") else FeatureStore(str(store), mode="r")
    vf = store.read_video(feature_set, video_uid)
    if vf.feats.shape[0] == 0:
        raise kts.KTSError(f"video {video_uid!r} has no feature steps in {feature_set!r}")
    if shot_seconds > 0:
        n = max(1, math.ceil((float(vf.times.max()) + 1e-9) / shot_seconds))
        x = shot_features(vf.feats, vf.times, n, shot_seconds, video_uid)
        starts = np.arange(n + 1) * shot_seconds
        starts[-1] = max(starts[-1], float(vf.times.max()))
    else:  # steps as shots: a step spans the midpoints to its neighbours
        x, t = vf.feats, vf.times
        mids = (t[1:] + t[:-1]) / 2 if len(t) > 1 else np.array([])
        starts = np.concatenate([[0.0], mids, [t[-1] + (t[-1] - mids[-1] if len(mids) else 0.5)]])
    b = kts.segment(x, max_change_points=max_change_points, lmax=lmax, vmax=vmax, kernel=kernel)
    return {"video_uid": video_uid, "feature_set": feature_set, "shot_seconds": shot_seconds,
            "num_shots": int(x.shape[0]), "boundaries": b.tolist(),
            "segments": [[float(starts[s]), float(starts[e])] for s, e in zip(b[:-1], b[1:])]}


def run(args) -> int:
    out = segment_video(args.store, args.feature_set, args.video_uid, args.shot_seconds, args.lmax,
                        args.max_change_points, args.vmax, args.kernel)
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"{len(out['segments'])} segments of {out['num_shots']} shots -> {args.out}", file=sys.stderr)
    print(text)
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``segment`` sub-command to an ``argparse`` subparsers object."""
    p = subparsers.add_parser("segment", help="KTS change points of one stored video (segments in seconds)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video_uid")
    p.add_argument("--store", required=True, help="feature store path or URL")
    p.add_argument("--feature-set", required=True)
    p.add_argument("--shot-seconds", type=float, default=5.0, help="average steps into shots (0: steps as shots)")
    p.add_argument("--lmax", type=int, default=200, help="longest segment in shots (0: unbounded)")
    p.add_argument("--max-change-points", type=int, default=None, help="default: every feasible number")
    p.add_argument("--vmax", type=float, default=1.0, help="KTS penalty weight (larger: fewer segments)")
    p.add_argument("--kernel", default="cosine", choices=["cosine", "linear", "rbf"])
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.set_defaults(func=lambda a: run(argparse.Namespace(**{**vars(a), "lmax": a.lmax or None})))
    return p
