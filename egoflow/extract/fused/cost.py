"""Cost report of a fused model: parameters and GMACs per window, fused vs unfused, and per extra query.

MACs are counted by ``torch.utils.flop_counter`` on the meta device (shapes only: nothing is computed, so the
base model is costed in a second on any machine); 1 MAC = 2 FLOPs. Matmuls, convolutions and attention are
counted; norms, activations and softmax are not (they are a few % of a transformer).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _gmacs(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() / 2e9


def cost_report(name: str = "egovlpv2-base", text_len: int = 16, **overrides) -> dict:
    """Counts for one window of the configured F frames and one query of ``text_len`` tokens."""
    from egoflow.extract.fused.config import get_fused_config
    from egoflow.extract.fused.model import FusedModel

    cfg = get_fused_config(name, **overrides)
    with torch.device("meta"):
        m = FusedModel(cfg)
        video = torch.empty(1, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    fusion = sum(_params(b.attn) - 4 * cfg.width * cfg.width - 4 * cfg.width  # the cross-attn extras only
                 for b in m.video.blocks if b.attn.fused)
    fusion += sum(_params(la.crossattention_t2i) + 1 for la in m.text.encoder.layer if la.fused)
    heads = sum(_params(x) for x in (m.fusion_text_in, m.fusion_video_in, m.text_pooler, m.video_pooler,
                                     m.vtm_head)) + m.fusion_cls.numel() + _params(m.fusion_norm)
    with torch.no_grad():
        # the meta device refuses data-dependent ops (position ids, .item()); the text embeddings cost no MACs
        def text_lower():
            x = torch.empty(1, text_len, cfg.text_width, device="meta")
            bias = torch.zeros(1, 1, 1, text_len, device="meta")
            return m.text.run(x, bias, 0, m.lower), bias

        def text_dual():
            x = torch.empty(1, text_len, cfg.text_width, device="meta")
            return m.text_proj(m.text.run(x, torch.zeros(1, 1, 1, text_len, device="meta"))[:, 0])

        def fused_query(v):
            t, bias = text_lower()
            return m.fused_outputs(*m.fuse(v, t, bias))

        lower = m.video_lower(video)
        g_video = _gmacs(lambda: m.encode_video(video))
        g_text = _gmacs(text_dual)
        g_lower = _gmacs(lambda: m.video_lower(video))
        g_query = _gmacs(lambda: fused_query(lower))
    return {
        "model": name, "num_frames": cfg.num_frames, "image_size": cfg.image_size, "text_tokens": text_len,
        "fused_layers": cfg.fused_layers, "depth": cfg.depth,
        "params_M": {"video": _params(m.video) / 1e6, "text": _params(m.text) / 1e6,
                     "fusion (cross-attention + alphas)": fusion / 1e6,
                     "projections": (_params(m.video_proj) + _params(m.text_proj)) / 1e6,
                     "VTM head": heads / 1e6, "MLM head": (_params(m.mlm) if m.mlm is not None else 0) / 1e6,
                     "total": _params(m) / 1e6},
        "gmacs": {"unfused: video window (dual)": g_video, "unfused: text (dual)": g_text,
                  "unfused: window + text": g_video + g_text,
                  "fused: window + query, full model": g_lower + g_query,
                  "fused: lower layers per window (reused)": g_lower,
                  "fused: per extra query with reuse": g_query},
    }


def format_report(r: dict) -> str:
    head = (f"{r['model']}: {r['depth']} layers, top {r['fused_layers']} fused; window {r['num_frames']} frames "
            f"of {r['image_size']} px; query {r['text_tokens']} tokens")
    lines = [head, "parameters (M):"]
    lines += [f"  {k:36s} {v:9.2f}" for k, v in r["params_M"].items()]
    lines.append("GMACs:")
    lines += [f"  {k:44s} {v:9.2f}" for k, v in r["gmacs"].items()]
    g = r["gmacs"]
    full = g["fused: window + query, full model"]
    lines.append(f"  fused/unfused per (window, query): {full / g['unfused: window + text']:.2f}x; "
                 f"extra query with reuse / full fused: {g['fused: per extra query with reuse'] / full:.2f}")
    return "\n".join(lines)
