"""Fused backbone throughput in windows/s: dual (alpha = 0) window features at fp32 and bf16 on CPU, and on CUDA
(fp16) when a GPU is present; one run, same inputs.

    python benchmarks/fused_throughput.py [--model egovlpv2-base] [--frames 16] [--windows 4] [--batch 2]

Also prints the agreement of bf16 with fp32 features (cosine), since bf16 is only worth it if it keeps the
features. Random weights (no checkpoint here): throughput does not depend on the weights. bf16 on CPU is fast
only with AVX512-BF16 / AMX; elsewhere it is emulated and slower than fp32 (the script says which CPU it has).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def rate(model, video, batch: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        model.encode_video(video[:batch])  # warm-up
        t0 = time.perf_counter()
        out = torch.cat([model.encode_video(video[i:i + batch]) for i in range(0, len(video), batch)])
        if video.is_cuda:
            torch.cuda.synchronize()
    return len(video) / (time.perf_counter() - t0), out.float().cpu()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="egovlpv2-base")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    a = ap.parse_args()

    from egoflow.extract.fused import create_fused_model

    m = create_fused_model(a.model, num_frames=a.frames).requires_grad_(False)
    S = m.cfg.image_size
    video = torch.randn(a.windows, a.frames, 3, S, S, generator=torch.Generator().manual_seed(0))
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    bf = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    print(f"{a.model}, {a.frames} frames of {S} px, {a.windows} windows, batch {a.batch}, "
          f"{torch.get_num_threads()} CPU threads (AMX {amx}, AVX512-BF16 {bf})")
    r32, f32 = rate(m, video, a.batch)
    print(f"cpu fp32: {r32:.3f} windows/s")
    r16, fbf = rate(m.to(torch.bfloat16), video.to(torch.bfloat16), a.batch)
    cos = F.cosine_similarity(f32, fbf, dim=-1).min().item()
    print(f"cpu bf16: {r16:.3f} windows/s ({r16 / r32:.2f}x fp32; min cosine to fp32 {cos:.4f})")
    if torch.cuda.is_available():
        mc = m.to("cuda", torch.float16)
        rc, _ = rate(mc, video.to("cuda", torch.float16), a.batch)
        print(f"cuda fp16 ({torch.cuda.get_device_name()}): {rc:.2f} windows/s")
    else:
        print("cuda: no GPU here")


if __name__ == "__main__":
    main()
