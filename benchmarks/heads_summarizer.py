"""Summarizer (QFVS) on synthetic QFVS data: KTS time, training/inference speed, F1 vs random scores.

    python benchmarks/heads_summarizer.py [--quick] [--device auto]

One fold of the QFVS protocol (train P01-P03, test P04) on planted data; the chance level is uniformly random
shot scores through the same decode (summary length and KTS segment cap). ``run(quick)`` is what
``benchmarks/heads_train.py`` calls.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SETTINGS = {
    True: dict(shots=(200, 220, 180, 200), queries=20, frac=0.05, dim=32,
               head=dict(dim=32, kts_lmax=40, top_percent=0.05), epochs=8),
    False: dict(shots=(1200, 1400, 1100, 1300), queries=30, frac=0.02, dim=128,
                head=dict(dim=128, kts_lmax=120, top_percent=0.02), epochs=15),
}


def run(quick: bool = True, device: str = "auto") -> dict:
    from egoflow.datasets.synthetic.qfvs import make_qfvs
    from egoflow.device import resolve_device
    from egoflow.heads import runner, summarizer
    from egoflow.heads.summarizer.data import load_split
    from egoflow.heads.summarizer.head import predict_dataset
    from egoflow.heads.summarizer.protocol import random_baseline

    s = SETTINGS[bool(quick)]
    device = str(resolve_device(device))
    with tempfile.TemporaryDirectory() as tmp:
        syn = make_qfvs(Path(tmp) / "data", str(Path(tmp) / "s.zarr"), num_shots=s["shots"],
                        queries_per_video=s["queries"], summary_fraction=s["frac"], dim=s["dim"], seed=0)
        from egoflow.features_store import FeatureStore
        store = FeatureStore(syn.store)
        cfg = summarizer.Config(video_dim=s["dim"], text_dim=s["dim"], **s["head"])
        t0 = time.perf_counter()
        _, train = load_split(store, syn.feature_set, syn.text_set, syn.root, cfg.train_videos, cfg)
        kts_s = time.perf_counter() - t0  # store read + shot averaging + KTS of three videos
        t0 = time.perf_counter()
        metrics = runner.train("summarizer", store, syn.feature_set, syn.root, Path(tmp) / "run",
                               text_set=syn.text_set, head_overrides=s["head"],
                               train_overrides=dict(epochs=s["epochs"], batch_size=4, lr=3e-3, warmup_steps=5,
                                                    device=device, progress=False, eval_every=s["epochs"]))
        total = time.perf_counter() - t0
        model, decode, _, _ = runner.load_run(Path(tmp) / "run", "summarizer", device)
        _, val = load_split(store, syn.feature_set, syn.text_set, syn.root, [cfg.test_video], cfg)
        predict_dataset(model, decode, val)  # warm-up
        t1 = time.perf_counter()
        predict_dataset(model, decode, val)
        infer_s = time.perf_counter() - t1
        rand = [random_baseline(store, syn.feature_set, syn.root, videos=("P04",), text_set=syn.text_set,
                                head_overrides=s["head"], seed=k)["F1"] for k in range(5)]
        # runner.train = load + KTS of 4 videos, training, 2 predictions of the held-out video
        train_s = max(total - 4 / 3 * kts_s - 2 * infer_s, 1e-9)
        n_train_shots = sum(x.video.shots.shape[0] for x in train.samples)
        return {"head": "summarizer", "benchmark": "qfvs", "device": device,
                "params": sum(p.numel() for p in model.parameters()),
                "shots_per_video": list(s["shots"]), "train_queries": len(train), "epochs": s["epochs"],
                "kts_and_load_s": round(kts_s, 3),
                "train_queries_per_s": round(s["epochs"] * len(train) / train_s, 2),
                "train_shots_per_s": round(s["epochs"] * n_train_shots / train_s, 1),
                "infer_queries_per_s": round(len(val) / infer_s, 2),
                "F1 P04": round(metrics["F1"], 4), "chance_F1": round(float(np.mean(rand)), 4)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(json.dumps(run(args.quick, args.device), indent=1))
