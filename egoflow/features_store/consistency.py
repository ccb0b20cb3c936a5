"""Consistency rules of a feature store that need more than one read: the config claim and steps vs duration.

* Config claim. Two writers creating one feature set at the same instant both see "absent" and both write the
  group's attrs; the later write wins, but the earlier writer has already said yes, so a 2 fps set could hold a
  1 fps video. ``<set>/_config.json`` is created exclusively (atomic on local disks: zarr links a finished temp
  file; in memory stores: one dict op), then re-read: exactly one config wins and every writer compares itself
  with the winner. fsspec stores (S3) check-then-write: there, create the set once before starting workers.
* Steps vs duration. A truncated video claiming its full length has fewer steps than ``duration_s x fps``;
  ``verify_videos`` checks it with every complete video's arrays.
* Local roots. A regular file or a foreign Zarr v2 node given as ``--store`` is refused before Zarr touches it.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync as _sync

from egoflow.features_store.conditioned import verify_conditioned

CLAIM = "_config.json"  # <set>/_config.json (a "_" name: never a video uid, never listed as one)


def claim_config(root: zarr.Group, name: str, attrs: dict, url: str) -> dict:
    """The set's config as first claimed (``attrs`` if this writer is the first); see the module docstring.

    A set made before claims existed is claimed with its own group attrs.
    """
    from egoflow.features_store.errors import StoreError

    key = f"{root.path + '/' if root.path else ''}{name}/{CLAIM}"
    store, proto = root.store, default_buffer_prototype()
    if _sync(store.get(key, prototype=proto)) is None:
        mine = attrs
        if name in root:
            have = dict(root[name].attrs)
            mine = have if have.get("config_hash") else attrs
        blob = json.dumps(mine, sort_keys=True, default=str).encode()
        _sync(store.set_if_not_exists(key, proto.buffer.from_bytes(blob)))
    for attempt in range(50):  # a non-atomic store may show a claim mid-write: re-read briefly
        buf = _sync(store.get(key, prototype=proto))
        try:
            return json.loads(buf.to_bytes()) if buf is not None else dict(attrs)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if attempt == 49:
                raise StoreError(f"{url}/{name}/{CLAIM}: unreadable feature-set claim (not JSON)") from None
            time.sleep(0.02)
    return dict(attrs)


def num_samples(end_s: float, fps: float) -> int:
    """Targets (k + 0.5) / fps strictly before ``end_s`` (the sampling rule of extract/video.py)."""
    return max(0, math.ceil(end_s * fps - 0.5))


def num_windows(frames: int, window: int, stride: int) -> int:
    """Windows over ``frames`` sampled frames (the rule of extract/windows.py: starts while not at the end)."""
    if frames <= 0:
        return 0
    return 1 + max(0, math.ceil((frames - max(window, stride)) / stride)) if stride < window else \
        1 + max(0, math.ceil((frames - stride) / stride))


def expected_steps(duration_s: float, fps: float, window: dict | None) -> tuple[int, int]:
    """(lo, hi) steps a video of ``duration_s`` may have: one sampled frame of slack either way."""
    n = num_samples(duration_s, fps)
    frames = (max(0, n - 1), n + 1)
    if not window:
        return frames
    w, s = int(window.get("frames", 1)), int(window.get("stride") or window.get("frames", 1))
    return num_windows(frames[0], w, s), num_windows(frames[1], w, s)


def steps_vs_duration(attrs: dict) -> str | None:
    """Why a video's ``num_steps`` disagrees with ``duration_s x fps``, or None when it agrees (or can't say)."""
    try:
        fps, dur, T = float(attrs["fps"]), float(attrs["duration_s"]), int(attrs["num_steps"])
    except (KeyError, TypeError, ValueError):
        return None  # not an extracted video (planted/imported features): nothing to compare with
    if not (fps > 0 and dur > 0 and math.isfinite(dur)):
        return None
    lo, hi = expected_steps(dur, fps, attrs.get("window") or None)
    if lo <= T <= hi:
        return None
    return (f"{T} steps but duration_s={dur:g} at {fps:g} fps needs {lo}..{hi} "
            "(a truncated video claiming its full length? re-extract it with --force)")


def check_local_root(url: str, error=ValueError) -> None:
    """A local path that is a regular file or a foreign Zarr v2 node is refused before Zarr touches it
    (opening with ``mode="a"`` would otherwise fail with a traceback or write a v3 ``zarr.json`` on top)."""
    if "://" in url and not url.startswith("file://"):
        return
    path = url.removeprefix("file://")
    if os.path.isfile(path):
        raise error(f"{path} is a regular file, not a feature store (a directory); give another --store")
    for v2 in (".zgroup", ".zarray"):
        if os.path.isfile(os.path.join(path, v2)) and not os.path.isfile(os.path.join(path, "zarr.json")):
            raise error(f"{path} is a Zarr v2 {'group' if v2 == '.zgroup' else 'array'} ({v2}), not an "
                             "egoflow store (Zarr v3); it is left untouched: give another --store")


def verify_videos(store) -> list[str]:
    """Problems of the complete videos of every feature set: unreadable or missing arrays, shapes that disagree
    with ``num_steps``, non-finite features, decreasing times, and steps that disagree with the duration.
    A query-conditioned clip is checked by :func:`egoflow.features_store.conditioned.verify_conditioned`."""
    problems = []
    for name in store.feature_sets():
        fs = store.feature_set_group(name)
        dim = fs.attrs.get("dim")
        for uid in fs.uids():
            a = fs.video_attrs(uid)
            if not a or a.get("complete") is not True:
                continue  # incomplete videos are invisible to readers and redone by the next run
            if "queries" in a:  # a query-conditioned clip (conditioned.py): check every query's entry
                problems += verify_conditioned(store, name, uid, a, dim)
                continue
            try:
                vf = store.read_video(name, uid)
            except Exception as e:  # noqa: BLE001 - any read error is a finding, not a crash
                problems.append(f"{name}/{uid}: unreadable arrays ({e})")
                continue
            T = a.get("num_steps")
            if vf.feats.shape != (T, dim) or vf.times.shape != (T,):
                problems.append(f"{name}/{uid}: shapes {vf.feats.shape}/{vf.times.shape} != ({T}, {dim})")
            elif not np.isfinite(vf.feats).all() or np.any(np.diff(vf.times) < 0):
                problems.append(f"{name}/{uid}: non-finite features or decreasing times")
            elif (bad := steps_vs_duration(a)) is not None:
                problems.append(f"{name}/{uid}: {bad}")
    return problems
