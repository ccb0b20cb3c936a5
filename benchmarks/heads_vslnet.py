"""VSLNet on the planted synthetic NLQ set: training samples/s, inference queries/s, recall after fixed epochs.

    python benchmarks/heads_vslnet.py [--quick] [--device auto|cpu|cuda]

`run(quick)` is what benchmarks/heads_train.py calls. Full: ~3.2k queries (2.4k train), the Ego4D-default head
(dim 128, 8 heads, 4 conv layers) for 10 epochs; quick: ~0.4k queries, a tiny head, 8 epochs.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from egoflow.datasets.synthetic.nlq import make_synthetic_nlq
from egoflow.device import resolve_device
from egoflow.features_store import FeatureStore
from egoflow.heads import vslnet
from egoflow.heads.runner import build_seeded
from egoflow.heads.train import TrainConfig, fit
from egoflow.heads.vslnet.data import collate_nlq, load_nlq_split
from egoflow.heads.vslnet.head import NLQEvaluation, predict_dataset


def run(quick: bool = False, device: str = "auto") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(f"{tmp}/bench.zarr")
        t0 = time.perf_counter()
        data = make_synthetic_nlq(store, num_videos=48 if quick else 400, seed=0)
        gen_s = time.perf_counter() - t0
        head = dict(dim=32, num_heads=4, conv_layers=1, dropout=0.1) if quick else {}
        cfg = vslnet.Config(video_dim=data.video_dim, text_dim=data.text_dim, **head)
        kw = dict(text_set=data.text_set, max_pos_len=cfg.max_pos_len, extension=cfg.highlight_extension)
        t0 = time.perf_counter()
        train = load_nlq_split(store, data.feature_set, data.train, drop_zero_length=True, **kw)
        val = load_nlq_split(store, data.feature_set, data.val, split="val", **kw)
        load_s = time.perf_counter() - t0
        epochs = 8 if quick else 10
        # quick: few samples, so smaller batches and a constant higher lr to get enough steps in
        opt = dict(batch_size=16, lr=5e-3, schedule="constant") if quick else dict(batch_size=32, lr=2e-3,
                                                                                    schedule="cosine")
        tcfg = TrainConfig(epochs=epochs, warmup_steps=20, device=device, progress=False, seed=0, **opt)
        model, criterion, decode = build_seeded(vslnet.build, cfg, tcfg.seed)  # initial weights from the seed too
        dev = resolve_device(device)
        t0 = time.perf_counter()
        fit(model, criterion, train, collate_nlq, tcfg)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        predict_dataset(model, decode, val, batch_size=64)  # warm-up (allocator, kernels)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        results = predict_dataset(model, decode, val, batch_size=64)
        infer_s = time.perf_counter() - t0
        m = NLQEvaluation(val, val.queries).score(results)
    return {"head": "vslnet", "device": str(dev), "quick": quick, "num_train": len(train), "num_val": len(val),
            "epochs": epochs, "params": sum(p.numel() for p in model.parameters()),
            "train_samples_per_s": round(len(train) * epochs / train_s, 1),
            "infer_queries_per_s": round(len(val) / infer_s, 1),
            "R@1 IoU=0.3": m["R@1 IoU=0.3"], "R@1 IoU=0.5": m["R@1 IoU=0.5"],
            "R@5 IoU=0.3": m["R@5 IoU=0.3"], "R@5 IoU=0.5": m["R@5 IoU=0.5"], "mIoU": m["mIoU"],
            "generate_s": round(gen_s, 2), "load_s": round(load_s, 2), "train_s": round(train_s, 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.device), indent=1))
