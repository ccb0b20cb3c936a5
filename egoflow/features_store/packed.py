"""A packed copy of a feature set for fast bulk loads: one contiguous ``feats [sum T, D]`` + ``offsets``.

Per-video groups cost ~8 Zarr round trips each (~1 ms of Python/asyncio apiece), so loading 1 000 videos
per video is ~10x slower in CPU than 1 000 ``torch.load`` calls. ``<set>/_packed`` holds every complete video
back to back (uncompressed: zstd saves ~6% on fp16 and costs decode time), so a full load is a few large
chunk reads. It is a cache: the per-video groups stay the truth. A write into the set drops the pack, and a
reader uses it only when the set's listing is unchanged and no video pending at pack time has since completed;
otherwise ``load_feature_set`` falls back to per-video reads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

PACK = "_packed"  # a name no video can have (check_uid: uids start with a letter or digit)


def _torch():
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


class PackRace(Exception):
    """The set changed while it was being packed (a concurrent writer): the pack is dropped, nothing is lost."""


def pack_feature_set(store, name: str, chunk_rows: int = 4096, batch: int = 64) -> dict:
    """Write ``<name>/_packed`` from the complete videos; returns ``{"videos", "rows"}``. Memory: ~one batch.

    A concurrent writer rewriting a video or dropping the pack mid-way raises :class:`PackRace` (the partial
    pack is then unusable: ``load_packed`` falls back to per-video reads)."""
    import zarr

    from egoflow.features_store.store import VideoMissing

    try:
        return _pack(store, name, chunk_rows, batch)
    except (KeyError, FileNotFoundError, VideoMissing, zarr.errors.BaseZarrError) as e:
        raise PackRace(f"{store.url}/{name} changed while packing ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if "num_steps" not in str(e):
            raise
        raise PackRace(f"{store.url}/{name} changed while packing ({e})") from e


def _pack(store, name: str, chunk_rows: int, batch: int) -> dict:
    fs = store._set(name)
    info = dict(fs.attrs)
    keys = store._uids(fs)
    attrs = dict(zip(keys, store._attrs_of(fs, keys)))
    uids = [u for u in keys if attrs[u] and attrs[u].get("complete") is True]
    pending = [u for u in keys if u not in uids]
    off = np.concatenate([[0], np.cumsum([int(attrs[u]["num_steps"]) for u in uids])]).astype(np.int64)
    total, dim = int(off[-1]), int(info["dim"])
    drop_pack(store, fs)
    g = fs.create_group(PACK, attributes={"complete": False})
    rows = max(1, min(chunk_rows, total))
    feats = g.create_array("feats", shape=(total, dim), dtype=info["dtype"], chunks=(rows, dim), compressors=None)
    times = np.empty(total, np.float64)
    buf, start = [], 0  # rows read but not yet written: written in whole chunks so memory stays bounded
    for i in range(0, len(uids), batch):
        part = uids[i:i + batch]
        for j, (u, vf) in enumerate(store.load_feature_set(name, part).items(), start=i):
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
    now = store._uids(fs)
    if now != keys or store._attrs_of(fs, keys) != [attrs[u] for u in keys]:
        drop_pack(store, fs)  # a writer changed the set while we packed: this copy may mix old and new
        raise PackRace(f"{store.url}/{name} changed while packing")
    g.update_attributes({"uids": uids, "keys": keys, "pending": pending,
                         "video_attrs": {u: attrs[u] for u in uids}, "complete": True})  # last: commit point
    return {"videos": len(uids), "rows": total}


def drop_pack(store, fs) -> None:
    """Delete the pack (called by every write into the set: a pack never outlives a change)."""
    from egoflow.features_store.store import _sync

    import errno
    import time

    for attempt in range(20):  # a packer writing files meanwhile: rmtree meets new or vanished files, retry
        try:
            _sync(fs.store.delete_dir(f"{fs.path}/{PACK}"))
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.ENOENT) or attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))


def load_packed(store, name: str, video_uids=None, workers: int = 4):
    """``uid -> VideoFeatures`` from the pack, or None when there is no fresh pack covering ``video_uids``."""
    from egoflow.features_store.store import VideoFeatures

    fs = store._set(name)
    try:
        g = fs[PACK]
        a = dict(g.attrs)
    except (KeyError, ValueError):
        return None
    if a.get("complete") is not True or store._uids(fs) != a["keys"]:
        return None  # a video was added or removed since packing
    if any((store._video_attrs(fs, u) or {}).get("complete") is True for u in a["pending"]):
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
    torch = _torch()

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
