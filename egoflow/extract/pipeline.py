"""video file -> sampled frames -> frozen encoder -> feature store, one video at a time, resumable.

``extract_one`` is the unit of work (one Prefect task per video calls it too); ``extract`` loops over many
videos with progress bars and a summary. A bad video is recorded as a failure with its stage and reason and the
run goes on; nothing is marked complete until its features and times are stored.

Clip-level features (``window`` frames, ``stride``) pool the *frame* embeddings of each window (mean, then
L2-normalised when the encoder normalises): identical to encoding every frame of every window, but each frame is
encoded once however much the windows overlap. The last window may be shorter: it is kept, never dropped.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egoflow.errors import is_environment_error
from egoflow.extract.discover import (  # noqa: F401 - the pipeline's names for callers
    VIDEO_EXTENSIONS,
    InputError,
    discover,
    discover_videos,
    source_info,
    video_uid,
)
from egoflow.extract.durations import duration_attrs as _duration
from egoflow.extract.durations import why_no_samples as _why_no_samples
from egoflow.extract.encoders import EncoderSpec, describe, resolve, with_frames
from egoflow.extract.results import Summary, VideoResult
from egoflow.extract.short import short_reason
from egoflow.features_store import FeatureStore
from egoflow.features_store.store import StoreError, check_uid

TRANSIENT = (ConnectionError, TimeoutError)  # worth a retry; a corrupt file is not


@dataclass
class ExtractConfig:
    fps: float = 1.875  # sampled frames per second (Ego4D's 1.875 = 30 fps / stride 16)
    window: int = 0  # frames per clip window, 0 frame-level (taken from EncoderSpec.frames when given a spec)
    stride: int = 0  # sampled frames between window starts (default: window)
    backend: str = "auto"  # video reader: auto (decord, PyAV fallback) | decord | pyav
    decode: str = "sparse"  # PyAV: sparse (only the frames samples depend on; identical frames) | full
    decode_batch: int = 64  # frames decoded per batch (memory stays constant in video length)
    dtype: str = "float16"  # stored feature dtype
    force: bool = False  # recompute complete videos too
    min_duration_s: float = 0.0  # a recipe's window (--skip-short): a shorter video is recorded as failed, not read


def feature_set_name(encoder_desc: dict, cfg: ExtractConfig) -> str:
    """e.g. ``clip-ViT-B-32-openai-1.875fps`` or ``clip-ViT-B-32-none-1.875fps-w16s8``."""
    w = encoder_desc.get("pretrained", "none")
    if w == "file":
        w = "ckpt" + hashlib.sha1(encoder_desc["path"].encode()).hexdigest()[:6]
    kind = "fused" if encoder_desc.get("encoder") == "fused" else "clip"
    name = f"{kind}-{encoder_desc['model']}-{w}-{cfg.fps:g}fps"
    if cfg.window:
        name += f"-w{cfg.window}s{cfg.stride or cfg.window}"
    return name.replace("/", "_")


def default_set_name(spec: EncoderSpec, cfg: ExtractConfig) -> str:
    """The name :func:`prepare` gives ``spec``'s set, without loading the model (the parent flow's shards)."""
    return feature_set_name(describe(spec), with_frames(spec, cfg))


def extractor_config(encoder_desc: dict, cfg: ExtractConfig) -> dict:
    """Every setting that changes the stored numbers; its hash guards the feature set."""
    return {**encoder_desc, "fps": cfg.fps, "window": cfg.window, "stride": cfg.stride or cfg.window,
            "pooling": encoder_desc.get("pooling") or ("mean" if cfg.window else "none"),
            "sampling": encoder_desc.get("frame_rule") or "pts-centre"}


def pool_windows(feats: np.ndarray, times: np.ndarray, window: int, stride: int, normalize: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pool ``feats [N, D]`` over the windows of :mod:`egoflow.extract.windows`; times = window centres.

    A last window running past the end averages its real frames only (no padded copies of the last frame).
    """
    from egoflow.extract.windows import window_starts, window_times

    out = np.stack([feats[s:s + window].mean(0) for s in window_starts(len(feats), window, stride)])
    if normalize:
        out /= np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
    return out, window_times(times, window, stride)


def extract_one(path: str | Path, store: FeatureStore, feature_set: str, encoder, cfg: ExtractConfig,
                progress: bool = False) -> VideoResult:
    """Extract one video into ``store``; record (not raise) failures of the video itself. ``encoder``: an
    :class:`EncoderSpec` or an encoder object.

    The video is claimed first (``FeatureStore.claim``): a writer that loses the claim to a concurrent one
    skips the video ("claimed by another writer") instead of colliding with it.
    """
    encoder, cfg = resolve(encoder, cfg)
    path = Path(path)
    uid = video_uid(path)
    t0 = time.perf_counter()
    res = VideoResult(uid, "failed", str(path))
    try:
        check_uid(uid)
    except StoreError as e:  # discover derives valid uids; a caller passing its own path may not
        res.stage, res.reason = "open", str(e)
        return res
    source, failed_open = None, None
    try:
        source = source_info(path)
    except OSError as e:
        failed_open = f"cannot access {path}: {e.strerror or e}"
        if path.is_symlink():
            failed_open = f"broken symbolic link {path} -> {os.readlink(path)} ({e.strerror or e})"
    if source and not cfg.force and store.is_complete(feature_set, uid, source):
        res.status = "skipped"
        return res
    token = store.claim(feature_set, uid)
    if token is None:  # another writer (process, machine) is on it: lose the race gracefully
        res.status, res.reason = "skipped", "claimed by another writer"
        return res
    try:
        if failed_open:
            res.stage, res.reason = "open", failed_open
            store.record_failure(feature_set, uid, res.stage, res.reason, {"path": str(path)})
            return res
        if not cfg.force and store.is_complete(feature_set, uid, source):
            res.status = "skipped"  # finished by another writer between our check and our claim
            return res
        if reason := short_reason(path, cfg):
            res.stage, res.reason = "check", reason
            store.record_failure(feature_set, uid, res.stage, res.reason, source)
            return res
        return _extract_claimed(path, uid, source, store, feature_set, encoder, cfg, progress, res, t0)
    finally:
        store.release(feature_set, uid, token)


def _extract_claimed(path, uid, source, store, feature_set, encoder, cfg, progress, res, t0) -> VideoResult:
    from egoflow.extract.video import VideoReadError, iter_frames

    feats, times, notes = [], [], []
    stage = "decode"
    try:
        if getattr(encoder, "clip_level", False):  # fused backbone: whole windows through the model
            stage = "encode"  # the encoder decodes its own windows (the pipeline stays encoder-agnostic)
            F, T, res.frames = encoder.encode_video_windows(path, cfg, progress)
            attrs = {"fps": cfg.fps, **_duration(path, T, cfg.fps), "source": source}
        else:
            bar = tqdm(desc=uid[:24], unit="fr", disable=not progress, leave=False)
            for frames, ts in iter_frames(path, cfg.fps, size=encoder.image_size, batch_size=cfg.decode_batch,
                                          backend=cfg.backend, decode=cfg.decode, notes=notes):
                stage = "encode"
                feats.append(encoder.encode_frames(frames))
                stage = "decode"
                times.append(ts)
                bar.update(len(frames))
            bar.close()
            res.note = "; ".join(dict.fromkeys(notes))
            if not feats:
                raise VideoReadError(path, "decode", _why_no_samples(path, cfg.fps))
            F, T = np.concatenate(feats), np.concatenate(times)
            res.frames = len(F)
            attrs = {"fps": cfg.fps, **_duration(path, T, cfg.fps), "source": source}
            if cfg.window:
                F, T = pool_windows(F, T, cfg.window, cfg.stride or cfg.window, encoder.cfg.normalize)
        if cfg.window:
            attrs["window"] = {"frames": cfg.window, "stride": cfg.stride or cfg.window}
    except VideoReadError as e:
        res.stage, res.reason = e.stage, e.reason
        store.record_failure(feature_set, uid, res.stage, res.reason, source)
        return res
    except TRANSIENT:
        raise
    except OSError as e:
        if is_environment_error(e):
            raise  # disk full etc. is not this video's fault: stop (exit 3), do not blame the video
        res.stage, res.reason = stage, f"{type(e).__name__}: {e}"
        store.record_failure(feature_set, uid, res.stage, res.reason, source)
        return res
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
        res.stage, res.reason = stage, f"{type(e).__name__}: {e}"
        store.record_failure(feature_set, uid, res.stage, res.reason, source)
        return res
    stage = "write"
    store.write_video(feature_set, uid, F, T, attrs)  # store errors propagate: retried by the flow
    res.status, res.steps, res.duration_s = "done", len(F), attrs["duration_s"]
    res.seconds = time.perf_counter() - t0
    return res


def prepare(store: FeatureStore | str, encoder, cfg: ExtractConfig, feature_set: str | None = None
            ) -> tuple[FeatureStore, str]:
    """Create (or check) the feature set ``encoder`` (an encoder object) writes with ``cfg``; (store, set name).

    A fused encoder object sets ``cfg.window`` to its F when it is 0 (library callers)."""
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    if getattr(encoder, "clip_level", False) and cfg.window != encoder.cfg.num_frames:
        if cfg.window:  # a window is one forward pass of the fused model: F frames, no other length
            raise InputError(f"window {cfg.window} but this fused encoder was built for {encoder.cfg.num_frames} "
                             "frames per window (build it from one EncoderSpec: --frames sets both)")
        cfg.window = encoder.cfg.num_frames
    desc = encoder.describe()
    name = feature_set or feature_set_name(desc, cfg)
    store.create_feature_set(name, extractor_config(desc, cfg), dim=desc["dim"], dtype=cfg.dtype)
    return store, name


def shard(items: list, spec: str | None) -> list:
    """``"i/n"``: this worker's share of ``items`` (paths, or discovery failures), the same split on every worker.

    Paths are balanced by size and count: largest file first (bytes stand in for duration: one stat, no
    decode), each to the worker with the least bytes so far (ties: fewest videos, then lowest index), so no
    worker is left with nothing while another has several. Every worker computes the same split from the same
    inputs; a video that two workers still both reach (inputs changed between their starts) is claimed by one
    and skipped by the other. Failures found while discovering go to one worker by a stable hash of the path.
    """
    if not spec:
        return items
    try:
        i, n = (int(x) for x in spec.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {spec!r}") from None
    paths = [p for p in items if not isinstance(p, VideoResult)]
    mine = [r for r in items if isinstance(r, VideoResult)
            and int(hashlib.sha1(r.path.encode("utf-8", "surrogateescape")).hexdigest(), 16) % n == i]

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    load = [(0, 0, w) for w in range(n)]  # (bytes, videos, worker), indexed by worker
    taken = set()
    for k in sorted(range(len(paths)), key=lambda k: (-size(paths[k]), video_uid(paths[k]))):
        b, c, w = min(load)
        load[w] = (b + size(paths[k]), c + 1, w)
        if w == i:
            taken.add(k)
    return mine + [p for k, p in enumerate(paths) if k in taken]  # in input order


def extract(inputs, store: FeatureStore | str, encoder: EncoderSpec | object | None = None,
            cfg: ExtractConfig | None = None, feature_set: str | None = None, progress: bool = True,
            shard_spec: str | None = None, pack: bool = True, **encoder_kw) -> tuple[Summary, str]:
    """Extract every video in ``inputs`` into ``store``; return (summary, feature set name).

    ``encoder``: an :class:`EncoderSpec` (or ``EncoderSpec`` fields as keywords) or an encoder object. When
    anything was written, the set is then packed (one contiguous copy) so that heads load it fast.
    """
    encoder, cfg = resolve(encoder or EncoderSpec(**encoder_kw), cfg or ExtractConfig())
    paths, problems = discover(inputs)
    paths, problems = shard(paths, shard_spec), shard(problems, shard_spec)
    store, name = prepare(store, encoder, cfg, feature_set)
    summary = Summary(list(problems))
    for r in problems:
        tqdm.write(f"FAILED {r.video_uid} [{r.stage}]: {r.reason}", file=sys.stderr)
    t0 = time.perf_counter()
    overall = tqdm(paths, desc=f"extract -> {name}", unit="video", disable=not progress)
    for p in overall:
        r = extract_one(p, store, name, encoder, cfg, progress=progress)
        summary.results.append(r)
        if r.status == "failed":
            tqdm.write(f"FAILED {r.video_uid} [{r.stage}]: {r.reason}", file=sys.stderr)
        summary.seconds = time.perf_counter() - t0
        frames = sum(x.frames for x in summary.results)
        overall.set_postfix(fps=f"{frames / max(summary.seconds, 1e-9):.1f}", failed=summary.count("failed"))
    summary.seconds = time.perf_counter() - t0
    if pack and summary.count("done"):
        _pack(store, name)
    return summary, name


def _pack(store: FeatureStore, name: str) -> None:
    """Pack the set; the pack is a cache, so a concurrent writer changing the set mid-pack only skips it."""
    from egoflow.features_store.packed import PackRace

    try:
        r = store.pack(name)
    except PackRace as e:
        r = {"skipped": str(e)}
    if r.get("skipped"):
        tqdm.write(f"note: {name} not packed ({r['skipped']}); `egoflow store pack` packs it later",
                   file=sys.stderr)


__all__ = ["ExtractConfig", "extract", "extract_one", "discover", "discover_videos", "Summary", "VideoResult",
           "feature_set_name", "extractor_config", "pool_windows", "resolve", "with_frames", "default_set_name"]
