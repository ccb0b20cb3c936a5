"""VSGN on the planted MQ benchmark: training and inference clips/s, and val mAP after a fixed number of epochs.

quick=True: tiny head on 60 s clips (the unit-test setting; seconds on CPU).
quick=False: the Ego4D MQ baseline architecture (Config defaults: 928 steps, 256 channels, 5 levels, k=12)
on Ego4D-like clips (480 s at 1.875 fps, 512-dim features).

    python benchmarks/heads_vsgn.py [--full]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SETTINGS = {
    True: dict(videos=16, data=dict(clip_sec=60.0, fps=2.0, dim=32),
               head=dict(temporal_scale=64, hidden_dim=32, num_levels=3, num_head_layers=1, num_neighbours=4),
               train=dict(epochs=16, batch_size=4, lr=1e-3, step_milestones=(12,))),
    False: dict(videos=16, data=dict(clip_sec=480.0, fps=1.875, dim=512, num_classes=8, instances_per_clip=(2, 6),
                                     long_sec=(20.0, 60.0)),
                head=dict(),
                train=dict(epochs=10, batch_size=8, lr=2e-4, step_milestones=(8,))),
}


def _chance_map(clips, labels, seed=0) -> float:
    from egoflow.evaluate.mq import evaluate_mq
    rng = np.random.default_rng(seed)
    res = {}
    for c in clips:
        s = rng.uniform(0, c.clip_duration, 200)
        e = s + rng.uniform(0, 1, 200) * (c.clip_duration - s)
        res[c.clip_uid] = [{"label": str(rng.choice(labels)), "score": float(rng.random()), "segment": [a, b]}
                           for a, b in zip(s.tolist(), e.tolist())]
    return evaluate_mq(clips, {"results": res})["mAP"]


def run(quick: bool = True) -> dict:
    from egoflow.datasets.synthetic.mq import make_synthetic_mq
    from egoflow.device import resolve_device
    from egoflow.features_store import FeatureStore
    from egoflow.heads import runner
    from egoflow.heads.vsgn.head import load_split, predict_dataset

    s = SETTINGS[bool(quick)]
    device = str(resolve_device("auto"))
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(str(Path(tmp) / "s.zarr"))
        data = make_synthetic_mq(store, num_videos=s["videos"], seed=0, **s["data"])
        train = dict(s["train"], device=device, progress=False, eval_every=s["train"]["epochs"])
        t0 = time.perf_counter()
        metrics = runner.train("vsgn", store, data.feature_set, data.train, Path(tmp) / "run",
                               val_annotations=data.val, head_overrides=s["head"], train_overrides=train)
        total = time.perf_counter() - t0
        model, decode, cfg, _ = runner.load_run(Path(tmp) / "run", "vsgn", device)
        val_set = load_split(cfg, store, data.feature_set, data.val, "ignore")
        predict_dataset(model, decode, val_set, 8)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            predict_dataset(model, decode, val_set, 8)
        infer_s = (time.perf_counter() - t1) / reps
        # runner.train = training + 2 evaluations of the val set (best epoch + final predictions)
        train_s = max(total - 2 * infer_s, 1e-9)
        n_params = sum(p.numel() for p in model.parameters())
        return {"head": "vsgn", "benchmark": "mq", "setting": "tiny" if quick else "ego4d-baseline-architecture",
                "device": device, "params": n_params, "temporal_scale": cfg.temporal_scale,
                "train_clips": len(data.train), "val_clips": len(data.val), "epochs": train["epochs"],
                "train_clips_per_s": round(train["epochs"] * len(data.train) / train_s, 2),
                "infer_clips_per_s": round(len(val_set) / infer_s, 2),
                "mAP": round(metrics["mAP"], 4), "chance_mAP": round(_chance_map(data.val, data.labels), 4),
                "R@1 tIoU=0.5": round(metrics["R@1 tIoU=0.5"], 4)}


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    print(json.dumps(run(quick="--full" not in sys.argv), indent=1))
