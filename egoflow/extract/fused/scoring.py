"""Video-text pair scores of a fused backbone: dual (cosine of the projected embeddings), fusion (VTM
P(match)) and ensemble (their sum, as EgoVLPv2 reports), plus clip sampling for clip-level benchmarks.

A clip ``[start, end]`` becomes F frames at the centres of F equal parts of its span (EgoVLP's uniform test
sampling), each the nearest frame decoded at ``fps``; every video is decoded once for all its clips.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SCORES = ("dual", "vtm", "ensemble")


def clip_frames(path, spans: list[tuple[float, float]], num_frames: int, fps: float, size: int,
                backend: str = "auto") -> list[np.ndarray]:
    """uint8 ``[F, H, W, 3]`` (shorter side resized to ``size``) for each (start, end) span of one video,
    decoding it once."""
    from egoflow.extract.video import iter_frames

    if not spans:
        return []
    targets = [s + (np.arange(num_frames) + 0.5) * max(e - s, 0.0) / num_frames for s, e in spans]
    allt = np.concatenate(targets)
    best_d = np.full(len(allt), np.inf)
    best: list = [None] * len(allt)
    for batch, ts in iter_frames(path, fps, size=size, batch_size=32, backend=backend):
        d = np.abs(allt[:, None] - ts[None, :])  # [targets, batch]
        j = d.argmin(1)
        better = d[np.arange(len(allt)), j] < best_d
        for i in np.nonzero(better)[0]:
            best_d[i], best[i] = d[i, j[i]], batch[j[i]].copy()
    if best[0] is None:
        from egoflow.extract.video import VideoReadError

        raise VideoReadError(path, "decode", "no frames could be decoded")
    tol = 1.0 / fps
    far = [i for i in range(len(allt)) if best_d[i] > tol]
    if far:
        i = far[0]
        raise ValueError(f"{path}: clip {spans[i // num_frames]} lies outside the decoded video (nearest frame "
                         f"{best_d[i]:.2f} s away)")
    return [np.stack(best[k * num_frames:(k + 1) * num_frames]) for k in range(len(spans))]


@torch.inference_mode()
def pair_scores(encoder, clips: np.ndarray, texts: list[str], score: str | None = None) -> dict[str, np.ndarray]:
    """Scores of pairs (clips[i], texts[i]): uint8 ``[B, F, H, W, 3]`` -> {"dual", "vtm", "ensemble"} ``[B]``.
    A dual-only model (EgoVLP) has only "dual"; asking it for another ``score`` is refused."""
    m = encoder.model
    if getattr(m, "dual_only", False) and score not in (None, "dual"):
        m.forward_fused()  # raises: no VTM head
    video = encoder._clips(clips)
    ids, mask = encoder.tokenize(texts)
    v = F.normalize(m.encode_video(video).float(), dim=-1)
    t = F.normalize(m.encode_text(ids, mask).float(), dim=-1)
    dual = (v * t).sum(-1)
    if getattr(m, "dual_only", False):
        return {"dual": dual.cpu().numpy()}
    vtm = m.forward_fused(video, ids, mask)["vtm"].float().softmax(-1)[:, 1]
    return {"dual": dual.cpu().numpy(), "vtm": vtm.cpu().numpy(), "ensemble": (dual + vtm).cpu().numpy()}


@torch.inference_mode()
def similarity_matrix(encoder, clips: np.ndarray, texts: list[str], score: str = "dual") -> np.ndarray:
    """``[len(texts), len(clips)]`` scores of every text against every clip (EK-100 MIR style). ``vtm`` and
    ``ensemble`` run the fused model on every pair (cost grows with the product)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}: use one of {', '.join(SCORES)}")
    video = encoder._clips(clips)
    ids, mask = encoder.tokenize(texts)
    m = encoder.model
    v = F.normalize(m.encode_video(video).float(), dim=-1)
    t = F.normalize(m.encode_text(ids, mask).float(), dim=-1)
    sim = t @ v.T
    if score == "dual":
        return sim.cpu().numpy()
    vtm = torch.stack([m.forward_fused(video, ids[i:i + 1].expand(len(video), -1),
                                       mask[i:i + 1].expand(len(video), -1))["vtm"].float().softmax(-1)[:, 1]
                       for i in range(len(texts))])
    return (vtm if score == "vtm" else sim + vtm).cpu().numpy()
