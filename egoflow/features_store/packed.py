"""A packed copy of a feature set for fast bulk loads: one contiguous ``feats [sum T, D]`` + ``offsets``.

Per-video groups cost ~8 Zarr round trips each (~1 ms of Python/asyncio apiece), so loading 1 000 videos
per video is ~10x slower in CPU than 1 000 ``torch.load`` calls. ``<set>/_packed`` holds every complete video
back to back (uncompressed: zstd saves ~6% on fp16 and costs decode time), so a full load is a few large
chunk reads. It is a cache: the per-video groups stay the truth. A write into the set drops the pack, and a
reader uses it only when the set's listing is unchanged and no video pending at pack time has since completed;
otherwise ``load_feature_set`` falls back to per-video reads.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from egoflow.features_store.layout import SetGroup, VideoFeatures, optional_torch, to_float32

PACK = "_packed"  # a name no video can have (check_uid: uids start with a letter or digit)


class PackRace(Exception):
    """The set changed while it was being packed (a concurrent writer): the pack is dropped, nothing is lost."""


def pack_feature_set(fset: SetGroup, read: Callable[[list[str]], dict[str, VideoFeatures]],
                     chunk_rows: int = 4096, batch: int = 64) -> dict:
    """Write ``<set>/_packed`` from the complete videos, read ``batch`` at a time with ``read(uids)`` (the store's
    per-video loader); returns ``{"videos", "rows"}``. Memory: ~one batch.

    A concurrent writer rewriting a video or dropping the pack mid-way raises :class:`PackRace` (the partial
    pack is then unusable: ``load_packed`` falls back to per-video reads)."""
    import zarr

    from egoflow.features_store.errors import VideoMissing

    where = f"feature set {fset.name!r}"
    try:
        return _pack(fset, read, chunk_rows, batch)
    except (KeyError, FileNotFoundError, VideoMissing, zarr.errors.BaseZarrError) as e:
        raise PackRace(f"{where} changed while packing ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if "num_steps" not in str(e):
            raise
        raise PackRace(f"{where} changed while packing ({e})") from e


def _pack(fset: SetGroup, read, chunk_rows: int, batch: int) -> dict:
    name, fs = fset.name, fset.group
    info = fset.attrs
    keys = fset.uids()
    attrs = dict(zip(keys, fset.attrs_of(keys)))
    uids = [u for u in keys if attrs[u] and attrs[u].get("complete") is True]
    pending = [u for u in keys if u not in uids]
    off = np.concatenate([[0], np.cumsum([int(attrs[u]["num_steps"]) for u in uids])]).astype(np.int64)
    total, dim = int(off[-1]), int(info["dim"])
    drop_pack(fset)
    g = fs.create_group(PACK, attributes={"complete": False})
    rows = max(1, min(chunk_rows, total))
    feats = g.create_array("feats", shape=(total, dim), dtype=info["dtype"], chunks=(rows, dim), compressors=None)
    times = np.empty(total, np.float64)
    buf, start = [], 0  # rows read but not yet written: written in whole chunks so memory stays bounded
    for i in range(0, len(uids), batch):
        part = uids[i:i + batch]
        for j, (u, vf) in enumerate(read(part).items(), start=i):
            if len(vf.times) != off[j + 1] - off[j]:
                raise ValueError(f"{name}/{u}: {len(vf.times)} steps but num_steps says {off[j + 1] - off[j]}")
            times[off[j]:off[j + 1]] = vf.times
            buf.append(vf.feats.astype(info["dtype"]))
        n = sum(len(b) for b in buf)
        if n >= rows or i + batch >= len(uids):
            block = np.concatenate(buf) if buf else np.zeros((0, dim), info["dtype"])
            cut = n if i + batch >= len(uids) else (n // rows) * rows
            if cut:
                feats[start:start + cut] = block[:cut]
            start, buf = start + cut, [block[cut:]]
    g.create_array("times", data=times, chunks=(max(1, min(total, 1 << 20)),), compressors=None)
    g.create_array("offsets", data=off)
    if fset.uids() != keys or fset.attrs_of(keys) != [attrs[u] for u in keys]:
        drop_pack(fset)  # a writer changed the set while we packed: this copy may mix old and new
        raise PackRace(f"{name} changed while packing")
    g.update_attributes({"uids": uids, "keys": keys, "pending": pending,
                         "video_attrs": {u: attrs[u] for u in uids}, "complete": True})  # last: commit point
    return {"videos": len(uids), "rows": total}


def drop_pack(fset: SetGroup) -> None:
    """Delete the pack (called by every write into the set: a pack never outlives a change)."""
    import errno
    import time

    for attempt in range(20):  # a packer writing files meanwhile: rmtree meets new or vanished files, retry
        try:
            fset.delete(PACK)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.ENOENT) or attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))


def load_packed(fset: SetGroup, video_uids=None, workers: int = 4) -> dict[str, VideoFeatures] | None:
    """``uid -> VideoFeatures`` from the pack, or None when there is no fresh pack covering ``video_uids``."""
    fs = fset.group
    try:
        g = fs[PACK]
        a = dict(g.attrs)
    except (KeyError, ValueError):
        return None
    if a.get("complete") is not True or fset.uids() != a["keys"]:
        return None  # a video was added or removed since packing
    if any((fset.video_attrs(u) or {}).get("complete") is True for u in a["pending"]):
        return None  # a writer finished while the pack was built
    index = {u: i for i, u in enumerate(a["uids"])}
    want = a["uids"] if video_uids is None else list(video_uids)
    if any(u not in index for u in want):
        return None  # asked for videos the pack lacks (incomplete ones): let the per-video path say so
    try:
        off, arr = g["offsets"][:], g["feats"]
    except (KeyError, FileNotFoundError):
        return None  # arrays removed by a concurrent writer's drop while a packer committed: not a pack
    rows = arr.chunks[0]
    out = {u: np.empty((int(off[index[u] + 1] - off[index[u]]), arr.shape[1]), np.float32) for u in want}
    by_chunk: dict[int, list[str]] = {}  # which videos have rows in which chunk
    for u in want:
        s, e = off[index[u]], off[index[u] + 1]
        for c in range(int(s // rows), int((e - 1) // rows) + 1):
            by_chunk.setdefault(c, []).append(u)
    torch = optional_torch()

    def read(c: int) -> None:
        block = arr[c * rows:(c + 1) * rows]
        for u in by_chunk[c]:
            s, e = off[index[u]], off[index[u] + 1]
            lo, hi = max(s, c * rows), min(e, (c + 1) * rows)
            to_float32(out[u][lo - s:hi - s], block[lo - c * rows:hi - c * rows], torch)

    try:
        with ThreadPoolExecutor(workers) as ex:
            times_f = ex.submit(lambda: g["times"][:])
            list(ex.map(read, sorted(by_chunk)))
            times = times_f.result()
    except (KeyError, FileNotFoundError):
        return None  # dropped under us by a writer: read per video
    va = a["video_attrs"]
    return {u: VideoFeatures(out[u], times[off[index[u]]:off[index[u] + 1]].copy(), dict(va[u])) for u in want}
