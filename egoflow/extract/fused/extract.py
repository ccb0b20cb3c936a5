"""Fused-backbone extraction: dual window features (alpha = 0) and query-conditioned features with reuse.

Windows follow :mod:`egoflow.extract.windows` (window F sampled frames, stride S): every frame up to the end is
covered, a tail window shorter than F is padded by repeating its last real frame (documented in the feature
set's config, ``"tail": "last frame repeated"``), never dropped and never zero-filled; its time is the centre of
its real frames. Ego4D's 1.875 features/s is ``--fps 30 --window 16 --stride 16`` (or any fps / stride = 1.875).

Query-conditioned extraction (:mod:`egoflow.extract.query`) runs the unfused lower layers once per window and
only the top M fused layers per query (the EgoVLPv2 reuse point), a chunk of windows at a time so memory stays
bounded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


def iter_windows(path, encoder, cfg, chunk: int = 32, counter: dict | None = None):
    """Yield (uint8 windows ``[n, F, H, W, 3]``, centre times ``[n]``) chunks of a video; ``counter["frames"]``
    gets the number of sampled frames."""
    from egoflow.extract.video import iter_frames
    from egoflow.extract.windows import WindowPacker

    F = encoder.cfg.num_frames
    packer = WindowPacker(F, cfg.stride or F)
    pending: list = []
    frames = 0
    for batch, ts in iter_frames(path, cfg.fps, size=encoder.image_size, batch_size=cfg.decode_batch,
                                 backend=cfg.backend):
        frames += len(batch)
        pending += packer.push(batch, ts)
        while len(pending) >= chunk:
            yield np.stack([w for w, _ in pending[:chunk]]), np.array([t for _, t in pending[:chunk]])
            pending = pending[chunk:]
    pending += packer.finish()
    for i in range(0, len(pending), chunk):
        part = pending[i:i + chunk]
        yield np.stack([w for w, _ in part]), np.array([t for _, t in part])
    if counter is not None:
        counter["frames"] = frames


def encode_video_windows(path, encoder, cfg, progress: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Dual features of every window of a video: (feats ``[T, dim]``, times ``[T]``, sampled frames)."""
    feats, times, n = [], [], {"frames": 0}
    bar = tqdm(desc=Path(path).stem[:24], unit="win", disable=not progress, leave=False)
    for clips, ts in iter_windows(path, encoder, cfg, counter=n):
        feats.append(encoder.encode_windows(clips))
        times.append(ts)
        bar.update(len(clips))
    bar.close()
    if not feats:
        from egoflow.extract.video import VideoReadError

        raise VideoReadError(path, "decode", "no frames could be decoded")
    return np.concatenate(feats), np.concatenate(times), n["frames"]


def queries_from_file(path: str | Path) -> dict[str, list[str]] | list[str]:
    """``{video_or_clip_uid: [query, ...]}`` from a JSON mapping or an Ego4D NLQ file (keyed by clip_uid), or one
    list for every video from a ``.txt`` (one query per line)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"queries file {p} does not exist")
    if p.suffix.lower() == ".txt":
        return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("videos"), list):
        out: dict[str, list[str]] = {}
        for v in data["videos"]:
            for c in v.get("clips", []):
                qs = [q["query"] for a in c.get("annotations", []) for q in a.get("language_queries", [])
                      if isinstance(q.get("query"), str)]
                out[c["clip_uid"]] = list(dict.fromkeys(out.get(c["clip_uid"], []) + qs))
        return out
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {k: [str(q) for q in v] for k, v in data.items()}
    raise ValueError(f"{p}: expected {{uid: [queries]}}, an Ego4D NLQ file or a .txt of queries")


def conditioned_set_name(encoder_desc: dict, cfg) -> str:
    """``fused-<model>-<weights>-<fps>fps-w<F>s<S>-query`` (``cfg.window`` is F: see ``pipeline.with_frames``)."""
    w = encoder_desc["pretrained"] if encoder_desc["pretrained"] != "file" else "ckpt"
    return f"fused-{encoder_desc['model']}-{w}-{cfg.fps:g}fps-w{cfg.window}s{cfg.stride or cfg.window}-query"
