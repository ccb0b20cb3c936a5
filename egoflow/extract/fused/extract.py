"""Fused-backbone extraction: dual window features (alpha = 0) and query-conditioned features with reuse.

Windows follow :mod:`egoflow.extract.windows` (window F sampled frames, stride S): every frame up to the end is
covered, a tail window shorter than F is padded by repeating its last real frame (documented in the feature
set's config, ``"tail": "last frame repeated"``), never zero-filled; its time is the centre of its real frames.
With the encoder's ``tail="drop"`` (the QFVS recipe: the reference's ``drop_last``) it is not made at all.
Ego4D's 1.875 features/s is ``--fps 30 --window 16 --stride 16`` (or any fps / stride = 1.875).

Query-conditioned extraction (:mod:`egoflow.extract.query`) runs the unfused lower layers once per window and
only the top M fused layers per query (the EgoVLPv2 reuse point), a chunk of windows at a time so memory stays
bounded.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egoflow.checks import Checker, InputFileError, read_json, read_lines
from egoflow.extract.fused.config import FusedModelError


def iter_windows(path, encoder, cfg, chunk: int = 32, counter: dict | None = None):
    """Yield (uint8 windows ``[n, F, H, W, 3]``, centre times ``[n]``) chunks of a video; ``counter["frames"]``
    gets the number of sampled frames."""
    from egoflow.extract.video import iter_frames
    from egoflow.extract.windows import WindowPacker

    if getattr(encoder.cfg, "frame_rule", "") == "start-end-decord":
        yield from reference_windows(path, encoder, chunk, counter)
        return
    F = encoder.cfg.num_frames
    packer = WindowPacker(F, cfg.stride or F)
    pending: list = []
    frames = 0
    for batch, ts in iter_frames(path, cfg.fps, size=encoder.image_size, batch_size=cfg.decode_batch,
                                 backend=cfg.backend, decode=cfg.decode):
        if not isinstance(batch, np.ndarray):  # torchcodec-cuda frames: the window packer stacks host arrays
            batch = batch.cpu().numpy()
        frames += len(batch)
        pending += packer.push(batch, ts)
        while len(pending) >= chunk:
            yield np.stack([w for w, _ in pending[:chunk]]), np.array([t for _, t in pending[:chunk]])
            pending = pending[chunk:]
    if getattr(encoder.cfg, "tail", "") != "drop":  # "drop": a window past the last frame is not made (drop_last)
        pending += packer.finish()
    for i in range(0, len(pending), chunk):
        part = pending[i:i + chunk]
        yield np.stack([w for w, _ in part]), np.array([t for _, t in part])
    if counter is not None:
        counter["frames"] = frames


def reference_windows(path, encoder, chunk: int = 32, counter: dict | None = None):
    """:func:`iter_windows` by the references' NLQ/MQ rule (extract.reference ``start-end-decord``): the file is
    one clip from 0 to its length; ``int(dur * rate * F + 1)`` frames, windows of F, a short tail dropped; the
    window time is the centre of its frames' display intervals."""
    from egoflow.extract.reference import count_frames, read_frames, start_end_indices

    F = encoder.cfg.num_frames
    vlen, fps = count_frames(path)
    idx = start_end_indices(0.0, vlen / fps, F, encoder.cfg.window_rate, vlen)
    pend, pend_i = [], []
    for frames, got in read_frames(path, idx, encoder.cfg.pre_resize, batch=chunk * F):
        pend += list(frames)
        pend_i += list(got)
        n = len(pend) // F
        if n:
            w = np.stack(pend[:n * F]).reshape(n, F, *pend[0].shape)
            t = (np.asarray(pend_i[:n * F], np.float64).reshape(n, F).mean(1) + 0.5) / fps
            pend, pend_i = pend[n * F:], pend_i[n * F:]
            yield w, t
    if counter is not None:
        counter["frames"] = len(idx)


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
    if p.suffix.lower() == ".txt":  # (missing, non-UTF-8, malformed: one line naming the file, via egoflow.checks)
        return [ln.strip() for ln in read_lines(p) if ln.strip()]
    data, ck = read_json(p), Checker(p)
    if isinstance(data, dict) and isinstance(data.get("videos"), list):
        out: dict[str, list[str]] = {}
        for vi, v in enumerate(data["videos"]):
            for ci, c in enumerate(ck.get(v, "clips", f"videos[{vi}]", list, optional=True, default=[])):
                cw = f"videos[{vi}].clips[{ci}]"
                uid = ck.get(c, "clip_uid", cw, str)
                qs = [q["query"] for ai, a in enumerate(ck.get(c, "annotations", cw, list, optional=True, default=[]))
                      for q in ck.get(a, "language_queries", f"{cw}.annotations[{ai}]", list, optional=True,
                                      default=[]) if isinstance(q, dict) and isinstance(q.get("query"), str)]
                out[uid] = list(dict.fromkeys(out.get(uid, []) + qs))
        return out
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {k: [str(q) for q in v] for k, v in data.items()}
    raise InputFileError(p, None, "expected {uid: [queries]}, an Ego4D NLQ file or a .txt of queries")


def merge_queries(parts: list) -> dict[str, list[str]] | list[str]:
    """One query list or mapping from several ``--queries`` files: lists are joined, mappings joined per uid
    (order kept, duplicates once); a .txt list (every video) with a per-video file is ambiguous: an error."""
    if all(isinstance(p, list) for p in parts):
        return list(dict.fromkeys(q for p in parts for q in p))
    if any(isinstance(p, list) for p in parts):
        raise ValueError("--queries: a .txt list (queries for every video) cannot be combined with per-video files")
    out: dict[str, dict[str, None]] = {}
    for p in parts:
        for uid, qs in p.items():
            out.setdefault(uid, {}).update(dict.fromkeys(qs))
    return {uid: list(qs) for uid, qs in out.items()}


def conditioned_set_name(encoder_desc: dict, cfg) -> str:
    """``fused-<model>-<weights>-<fps>fps-w<F>s<S>-query`` (``cfg.window`` is F: see ``pipeline.with_frames``)."""
    w = encoder_desc["pretrained"] if encoder_desc["pretrained"] != "file" else "ckpt"
    return f"fused-{encoder_desc['model']}-{w}-{cfg.fps:g}fps-w{cfg.window}s{cfg.stride or cfg.window}-query"


class UntunedFusionError(FusedModelError):
    """Query-conditioned features asked of a model whose fusion gates are all 0 (``--strict``)."""


def check_fusion_tuned(encoder, strict: bool = False) -> str:
    """'' when the fusion gates are open; else a one-line warning (printed) or, with ``strict``, an error:
    with every gate at 0 the "query-conditioned" features ignore the query and P(match) comes from an untuned
    VTM head (clip-fused without --fusion-checkpoint, or a checkpoint without fusion weights)."""
    alphas = encoder.model.alphas()
    if alphas and any(float(a.detach().abs().max()) > 0 for a in alphas):
        return ""
    hint = " (clip-fused: pass --fusion-checkpoint from fusion tuning)" if encoder.is_clip else ""
    msg = (f"{encoder.cfg.model}: every fusion gate is 0 and the VTM head is untuned, so query-conditioned "
           f"features do not depend on the query{hint}")
    if strict:
        raise UntunedFusionError(msg)
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)
    return msg
