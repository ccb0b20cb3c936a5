"""`egoflow segment`: kernel temporal segmentation (KTS) of one video of a feature store.

    egoflow segment --store S --feature-set F VIDEO_UID [--shot-seconds 5] [--lmax 200] [--max-change-points M]
                    [--vmax 1.0] [--kernel cosine] [--out segments.json]

Store steps are averaged into shots of ``--shot-seconds`` (0: use the steps as they are), KTS runs on the shots,
and the segments are printed (and written with ``--out``) as JSON in seconds of video time.
"""
from __future__ import annotations

import argparse
import json
import sys

from egoflow.cli.args import add_storage_args


def cmd_segment(a) -> int:
    from egoflow.segment.video import segment_video

    out = segment_video(a.store, a.feature_set, a.video_uid, a.shot_seconds, a.lmax or None, a.max_change_points,
                        a.vmax, a.kernel)
    text = json.dumps(out, indent=1)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"{len(out['segments'])} segments of {out['num_shots']} shots -> {a.out}", file=sys.stderr)
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
    add_storage_args(p)
    p.set_defaults(func=cmd_segment)
    return p
