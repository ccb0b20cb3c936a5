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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egoflow.features_store import FeatureStore

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
TRANSIENT = (ConnectionError, TimeoutError)  # worth a retry; a corrupt file is not


class InputError(ValueError):
    pass


@dataclass
class ExtractConfig:
    fps: float = 1.875  # sampled frames per second (Ego4D's 1.875 = 30 fps / stride 16)
    window: int = 0  # frames per clip window; 0 = frame-level features
    stride: int = 0  # sampled frames between window starts (default: window)
    backend: str = "auto"  # video reader: auto (decord, PyAV fallback) | decord | pyav
    decode_batch: int = 64  # frames decoded per batch (memory stays constant in video length)
    dtype: str = "float16"  # stored feature dtype
    force: bool = False  # recompute complete videos too


@dataclass
class VideoResult:
    video_uid: str
    status: str  # done | skipped | failed
    path: str
    steps: int = 0
    frames: int = 0
    duration_s: float = 0.0
    seconds: float = 0.0
    stage: str = ""
    reason: str = ""


@dataclass
class Summary:
    results: list[VideoResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def line(self) -> str:
        frames = sum(r.frames for r in self.results if r.status == "done")
        hours = sum(r.duration_s for r in self.results if r.status == "done") / 3600
        rate = frames / self.seconds if self.seconds else 0.0
        rt = hours * 3600 / self.seconds if self.seconds else 0.0
        return (f"done {self.count('done')}, skipped {self.count('skipped')}, failed {self.count('failed')} | "
                f"{hours:.3f} h of video extracted | {frames} frames at {rate:.1f} sampled frames/s "
                f"({rt:.1f}x real time) in {self.seconds:.1f} s")


def discover_videos(inputs: list[str] | str) -> list[Path]:
    """Video files from files, directories (recursive) and ``.txt`` lists (one path per line)."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in VIDEO_EXTENSIONS and q.is_file())
        elif p.suffix.lower() in (".txt", ".lst"):
            if not p.exists():
                raise InputError(f"video list {p} does not exist")
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            out += [Path(ln) if os.path.isabs(ln) else p.parent / ln for ln in lines if ln and not ln.startswith("#")]
        else:
            out.append(p)  # may be missing: that is recorded as the video's failure, not a crash of the run
    seen: dict[str, Path] = {}
    for p in out:
        uid = video_uid(p)
        if uid in seen and seen[uid].resolve() != p.resolve():
            raise InputError(f"two videos map to video_uid {uid!r}: {seen[uid]} and {p}; rename one")
        seen[uid] = p
    return list(seen.values())


def video_uid(path: Path) -> str:
    """Ego4D names files ``<video_uid>.mp4``: the uid is the file stem."""
    return Path(path).stem


def source_info(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime": int(st.st_mtime)}


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


def extractor_config(encoder_desc: dict, cfg: ExtractConfig) -> dict:
    """Every setting that changes the stored numbers; its hash guards the feature set."""
    return {**encoder_desc, "fps": cfg.fps, "window": cfg.window, "stride": cfg.stride or cfg.window,
            "pooling": encoder_desc.get("pooling") or ("mean" if cfg.window else "none"), "sampling": "pts-centre"}


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
    """Extract one video into ``store``; record (not raise) failures of the video itself."""
    from egoflow.extract.video import VideoReadError, iter_frames

    path = Path(path)
    uid = video_uid(path)
    t0 = time.perf_counter()
    res = VideoResult(uid, "failed", str(path))
    try:
        source = source_info(path)
    except OSError as e:
        res.stage, res.reason = "open", f"cannot access {path}: {e.strerror or e}"
        store.record_failure(feature_set, uid, res.stage, res.reason, {"path": str(path)})
        return res
    if not cfg.force and store.is_complete(feature_set, uid, source):
        res.status = "skipped"
        return res
    feats, times = [], []
    stage = "decode"
    try:
        if getattr(encoder, "clip_level", False):  # fused backbone: whole windows through the model
            stage = "encode"  # the encoder decodes its own windows (the pipeline stays encoder-agnostic)
            F, T, res.frames = encoder.encode_video_windows(path, cfg, progress)
        else:
            bar = tqdm(desc=uid[:24], unit="fr", disable=not progress, leave=False)
            for frames, ts in iter_frames(path, cfg.fps, size=encoder.image_size, batch_size=cfg.decode_batch,
                                          backend=cfg.backend):
                stage = "encode"
                feats.append(encoder.encode_frames(frames))
                stage = "decode"
                times.append(ts)
                bar.update(len(frames))
            bar.close()
            if not feats:
                raise VideoReadError(path, "decode", "no frames could be decoded")
            F, T = np.concatenate(feats), np.concatenate(times)
            res.frames = len(F)
            if cfg.window:
                F, T = pool_windows(F, T, cfg.window, cfg.stride or cfg.window, encoder.cfg.normalize)
        attrs = {"fps": cfg.fps, "duration_s": _duration(path, T, cfg.fps), "source": source}
        if cfg.window:
            attrs["window"] = {"frames": cfg.window, "stride": cfg.stride or cfg.window}
    except VideoReadError as e:
        res.stage, res.reason = e.stage, e.reason
        store.record_failure(feature_set, uid, res.stage, res.reason, source)
        return res
    except TRANSIENT:
        raise
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
        res.stage, res.reason = stage, f"{type(e).__name__}: {e}"
        store.record_failure(feature_set, uid, res.stage, res.reason, source)
        return res
    stage = "write"
    store.write_video(feature_set, uid, F, T, attrs)  # store errors propagate: retried by the flow
    res.status, res.steps, res.duration_s = "done", len(F), attrs["duration_s"]
    res.seconds = time.perf_counter() - t0
    return res


def _duration(path: Path, times: np.ndarray, fps: float) -> float:
    from egoflow.extract.video import probe

    try:
        return float(probe(path).duration_s)
    except Exception:  # noqa: BLE001 - duration is informative; fall back to the sampled span
        return float(times[-1] + 0.5 / fps)


def prepare(store: FeatureStore | str, encoder, cfg: ExtractConfig, feature_set: str | None = None
            ) -> tuple[FeatureStore, str]:
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    if getattr(encoder, "clip_level", False) and cfg.window != encoder.cfg.num_frames:
        if cfg.window:  # a window is one forward pass of the fused model: F frames, no other length
            raise InputError(f"--window {cfg.window} but the fused model takes {encoder.cfg.num_frames} frames per "
                             "window (set --num-frames)")
        cfg.window = encoder.cfg.num_frames
    desc = encoder.describe()
    name = feature_set or feature_set_name(desc, cfg)
    store.create_feature_set(name, extractor_config(desc, cfg), dim=desc["dim"], dtype=cfg.dtype)
    return store, name


def shard(paths: list[Path], spec: str | None) -> list[Path]:
    """``"i/n"``: this worker's share, by a stable hash of the uid, so n machines never write the same video."""
    if not spec:
        return paths
    try:
        i, n = (int(x) for x in spec.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {spec!r}") from None
    return [p for p in paths if int(hashlib.sha1(video_uid(p).encode()).hexdigest(), 16) % n == i]


def extract(inputs, store: FeatureStore | str, encoder=None, cfg: ExtractConfig | None = None,
            feature_set: str | None = None, progress: bool = True, shard_spec: str | None = None,
            pack: bool = True, **encoder_kw) -> tuple[Summary, str]:
    """Extract every video in ``inputs`` into ``store``; return (summary, feature set name).

    When anything was written, the set is then packed (one contiguous copy) so that heads load it fast.
    """
    from egoflow.extract.clip import create_encoder

    cfg = cfg or ExtractConfig()
    encoder = encoder or create_encoder(**encoder_kw)
    paths = shard(discover_videos(inputs), shard_spec)
    store, name = prepare(store, encoder, cfg, feature_set)
    summary = Summary()
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
        store.pack(name)
    return summary, name


__all__ = ["ExtractConfig", "extract", "extract_one", "discover_videos", "Summary", "VideoResult",
           "feature_set_name", "extractor_config", "pool_windows"]
