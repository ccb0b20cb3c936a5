"""The QFVS evaluation protocol and its chance level.

- ``leave_one_out``: for each video, train on the others and test on it (one runner run per fold, in
  ``out_dir/<video>``); F1 per held-out video and the averages, as QFVS papers report them.
- ``random_baseline``: uniformly random shot scores through the same decode (summary length, KTS segment cap).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from egoflow.datasets.qfvs import VIDEOS
from egoflow.heads.spec import config_from_dict, open_store, resolve_text_set
from egoflow.heads.summarizer.data import SummarizerDataError, collate_qfvs, load_split
from egoflow.heads.summarizer.head import score
from egoflow.heads.summarizer.model import Config, build


def leave_one_out(train, store, feature_set: str, annotations, out_dir, *, videos=VIDEOS, text_set=None,
                  head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """QFVS protocol: train on all videos but one, test on it, for each video; F1 per video and the average.

    ``train``: :func:`egoflow.heads.runner.train` (passed in: the runner imports the registry, which imports
    this head). Writes ``out_dir/<video>/`` (a run directory per fold) and ``out_dir/metrics.json``.
    """
    per, rows = {}, {}
    for v in videos:
        over = {**(head_overrides or {}), "train_videos": tuple(x for x in videos if x != v), "test_video": v}
        m = train("summarizer", store, feature_set, annotations, Path(out_dir) / v, text_set=text_set,
                  head_overrides=over, train_overrides=train_overrides)
        per[v], rows[v] = m[f"F1 {v}"], m
    out = {"F1": float(np.mean(list(per.values()))),
           "precision": float(np.mean([r["precision"] for r in rows.values()])),
           "recall": float(np.mean([r["recall"] for r in rows.values()]))}
    out.update({f"F1 {v}": f for v, f in per.items()})
    (Path(out_dir) / "metrics.json").write_text(json.dumps(out, indent=1))
    return out


def random_baseline(store, feature_set: str, annotations, *, videos=VIDEOS, text_set=None,
                    head_overrides: dict | None = None, seed: int = 0) -> dict:
    """F1 of uniformly random shot scores through the same decode (length, KTS segment cap) as the head."""
    store = open_store(store)
    text_set = resolve_text_set(store, text_set or None, "prompt embeddings", SummarizerDataError)
    cfg = config_from_dict(Config, {"video_dim": 1, "text_dim": 1, **(head_overrides or {})}, "summarizer")
    gvideos, data = load_split(store, feature_set, text_set, annotations, videos, cfg)
    decode = build(cfg)[2]
    gen = torch.Generator().manual_seed(seed)
    preds: dict = {}
    for batch in DataLoader(data, batch_size=8, collate_fn=collate_qfvs):
        logits = torch.rand(batch["labels"].shape, generator=gen)
        for p in decode({"logits": logits}, batch):
            preds.setdefault(p["video"], {})[p["query"]] = p["shots"]
    return score(gvideos, preds)


def demo(ctx, runner) -> dict:
    """Synthetic QFVS (own data + store under ctx.out_dir), KTS + summarizer, leave-one-out over P01-P04."""
    from egoflow.datasets.synthetic.qfvs import make_qfvs
    t0 = time.perf_counter()
    out = Path(ctx.out_dir)
    # quick: ~20 s CPU; full: ~40 s CPU (both well under a minute on one core)
    shots = (200, 220, 180, 200) if ctx.quick else (320, 360, 300, 340)
    frac = 0.05 if ctx.quick else 0.03
    syn = make_qfvs(out / "qfvs_data", str(out / "qfvs_store.zarr"), num_shots=shots, seed=ctx.seed, dim=32,
                    queries_per_video=20, summary_fraction=frac)
    head = dict(dim=32, top_percent=frac, kts_lmax=40)
    tr = dict(epochs=6 if ctx.quick else 8, batch_size=4, lr=3e-3, warmup_steps=5, seed=ctx.seed,
                 device=ctx.device, progress=False)
    metrics = leave_one_out(runner.train, syn.store, syn.feature_set, syn.root, out / "runs", text_set=syn.text_set,
                            head_overrides=head, train_overrides=tr)
    metrics["F1 random"] = random_baseline(syn.store, syn.feature_set, syn.root, text_set=syn.text_set,
                                           head_overrides=head, seed=ctx.seed)["F1"]
    metrics["seconds"] = time.perf_counter() - t0
    return {"benchmark": "qfvs", "metrics": metrics, "predictions": str(out / "runs"), "gt": syn.root}
