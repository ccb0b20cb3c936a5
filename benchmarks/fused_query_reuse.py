"""Query-conditioned features: per-query cost with lower-layer reuse vs the full fused model per query, one run.

    python benchmarks/fused_query_reuse.py [--model egovlpv2-base] [--width 384] [--image-size 112]
                                           [--frames 4] [--windows 8] [--queries 6] [--precision fp32]

For W windows and Q queries: (a) "reuse" runs the unfused lower layers (and the text-independent part of the
first fused layer) once per window and only the top M fused layers per query, the last one for the CLS token
only (what ``egoflow extract --encoder fused --queries`` does); (b) "full" runs the whole fused model per
(window, query). Prints seconds per query for both and their ratio (target <= 0.6), and asserts both
give the same conditioned features and VTM scores. Default: the egovlpv2-base structure (12 layers, 6 fused)
at a reduced width / image size so it fits 2 CPU cores; pass --width 768 --image-size 224 --frames 16 for the
real size. Random weights (no checkpoint here): cost does not depend on the weights.
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="egovlpv2-base")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--queries", type=int, default=6)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best of each is kept")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from egoflow.extract.fused import create_fused_model

    over = {"num_frames": a.frames, "image_size": a.image_size}
    if a.width != 768:
        over.update(width=a.width, heads=a.width // 64, text_width=a.width, text_heads=a.width // 64,
                    text_mlp=4 * a.width, proj_dim=256)
    m = create_fused_model(a.model, **over)
    dt = torch.bfloat16 if a.precision == "bf16" else torch.float32
    m = m.to(dtype=dt).requires_grad_(False)
    with torch.no_grad():
        for p in m.alphas():
            p.fill_(0.5)  # fusion on, as for a tuned model (the cost is the same at any alpha)
    g = torch.Generator().manual_seed(0)
    video = torch.randn(a.windows, a.frames, 3, a.image_size, a.image_size, generator=g).to(dt)
    ids = torch.randint(3, 1000, (a.queries, 12), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)

    def per_query(reuse: bool):
        outs = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            cache = m.window_cache(video) if reuse else None  # once per window, whatever the queries
            for q in range(a.queries):
                t, bias = m.text_lower(ids[q:q + 1].expand(a.windows, -1), mask[q:q + 1].expand(a.windows, -1))
                if reuse:  # top M layers only, first one's query-free part cached, last one CLS only
                    o = m.fused_outputs(*m.fuse(cache["v"], t, bias, cache=cache, cls_only=True))
                else:  # the whole fused model, as the reference runs it per (window, query)
                    o = m.fused_outputs(*m.fuse(m.video_lower(video), t, bias))
                outs.append((o["video"].float(), o["vtm"].float()))
        return (time.perf_counter() - t0) / a.queries, outs

    per_query(True)  # warm-up
    t_reuse = t_full = float("inf")
    for _ in range(a.repeats):  # interleaved, so a load spike on a shared machine hits both alike
        t, o_reuse = per_query(True)
        t_reuse = min(t_reuse, t)
        t, o_full = per_query(False)
        t_full = min(t_full, t)
    for (v1, s1), (v2, s2) in zip(o_reuse, o_full):
        assert torch.allclose(v1, v2, atol=1e-4) and torch.allclose(s1, s2, atol=1e-4), "reuse changed the outputs"
    cfg = m.cfg
    print(f"{a.model} (width {cfg.width}, {cfg.depth} layers, {cfg.fused_layers} fused, {a.frames} frames of "
          f"{a.image_size} px, {a.precision}), {a.windows} windows x {a.queries} queries, "
          f"{torch.get_num_threads()} threads")
    print(f"per query: reuse {t_reuse * 1e3:.1f} ms, full fused model {t_full * 1e3:.1f} ms, "
          f"ratio {t_reuse / t_full:.2f} (target <= 0.6); outputs equal: yes")


if __name__ == "__main__":
    main()
