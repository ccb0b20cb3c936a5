"""egoflow's additions one at a time against a head recipe, on the head's planted benchmark, one seed for all rows.

    python benchmarks/recipe_additions.py --head vslnet|vsgn|laviti [--seed S] [--quick]

Rows: the recipe (ego4d-vslnet, ego4d-vsgn, laviti-paper); the recipe with each of egoflow's values switched on
alone (the recipe's key dropped, so the head's default applies); egoflow's defaults (no recipe). The additions
and the rows come from ``egoflow.recipes.additions`` (``additions``, ``ablation``): the difference between the
recipe and the head's defaults, so they follow both. Every row runs at one size (``size``: tiny widths where the
recipe's are large) and one budget (``budget``: epochs, batch, lr ...). Where size or budget replace a recipe
value (the recipe's 200 epochs, 256-chunk batches or its lr, which learns nothing in a few-minute run), the table
header names it and that addition has no row. Prints one JSON line per row and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def cut_clips(queries: list, seed: int) -> list:
    """Each clip cut to a random length between its last answer's end + 2 s and its full length, so that batches
    hold clips of different lengths (padding: what ``mask_conv_padding`` is about; planted clips are all 64 s)."""
    rng = np.random.default_rng(seed)
    last = {}
    for q in queries:
        last[q.clip_uid] = max(last.get(q.clip_uid, 0.0), q.end_sec)
    end = {c: float(rng.uniform(min(e + 2.0, 64.0), 64.0)) for c, e in sorted(last.items())}
    return [replace(q, clip_video_end_sec=q.clip_video_start_sec + max(end[q.clip_uid], q.end_sec))
            for q in queries]


def _vslnet(tmp: Path, seed: int, quick: bool) -> dict:
    from egoflow.datasets.synthetic.nlq import make_synthetic_nlq
    from egoflow.features_store import FeatureStore
    store = FeatureStore(str(tmp / "s.zarr"))
    n = 24 if quick else 48
    d = make_synthetic_nlq(store, num_videos=n, clip_sec=64.0, seed=seed)
    return dict(recipe="ego4d-vslnet", store=store, feature_set=d.feature_set, text_set=d.text_set,
                train=cut_clips(d.train, seed), val=cut_clips(d.val, seed + 1),
                metrics=("R@1 IoU=0.3", "R@1 IoU=0.5", "mIoU"),
                size=dict(dim=32, num_heads=4, conv_layers=1),
                size_note="width 32, 4 heads, 1 conv layer (recipe: 128, 8, 4)",
                budget=dict(epochs=6 if quick else 25, batch_size=16, lr=5e-3),
                data_note=f"planted NLQ, {n} videos of 2 clips cut to random lengths (3/4 train, 1/4 val)")


def _vsgn(tmp: Path, seed: int, quick: bool) -> dict:
    from egoflow.datasets.synthetic.mq import make_synthetic_mq
    from egoflow.features_store import FeatureStore
    store = FeatureStore(str(tmp / "s.zarr"))
    n = 8 if quick else 16
    d = make_synthetic_mq(store, num_videos=n, seed=seed, clip_sec=60.0, fps=2.0, dim=32)
    return dict(recipe="ego4d-vsgn", store=store, feature_set=d.feature_set, text_set=None,
                train=d.train, val=d.val, metrics=("mAP", "R@1 tIoU=0.5"),
                size=dict(temporal_scale=64, hidden_dim=32, num_levels=3, num_head_layers=1, num_neighbours=4),
                size_note="64 steps, 32 channels, 3 levels, 1 tower layer, k=4 (recipe: 928, 256, 5, 4, 12)",
                budget=dict(epochs=6 if quick else 16, batch_size=4, lr=1e-3, step_milestones=(12,)),
                data_note=f"planted MQ, {n} videos of 60 s at 2 fps (3/4 train, 1/4 val)")


def _laviti(tmp: Path, seed: int, quick: bool) -> dict:
    from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
    from egoflow.features_store import FeatureStore
    n_train, n_val = (16, 4) if quick else (32, 8)
    data = make_narrated(NarratedSpec(num_videos=n_train + n_val, seed=seed))
    held = {f"narrated{i:03d}" for i in range(n_train, n_train + n_val)}
    store = FeatureStore(str(tmp / "s.zarr"))
    fs, ts = write_to_store(data, store)
    return dict(recipe="laviti-paper", store=store, feature_set=fs, text_set=ts,
                train=[n for n in data.narrations if n.video_uid not in held],
                val=[q for q in data.queries if q.video_uid in held],
                metrics=("R@1 IoU=0.3", "R@1 IoU=0.5", "R@5 IoU=0.5", "mIoU"),
                size=dict(heads=2, head_dim=16, enc_layers=2, dec_layers=2, num_queries=16, num_time_embeddings=64,
                          kernel=3, dropout=0.0),
                size_note="2x16 width, 2+2 layers, 16 queries, 64 TEs, kernel 3 (recipe: 8x64, 6+6, 256, 256, 7)",
                budget=dict(epochs=6 if quick else 20, batch_size=4, lr=2e-3, schedule="constant"),
                data_note=f"planted narrated videos, pretrain on {n_train}, zero-shot NLQ on {n_val} held out")


BENCH = {"vslnet": _vslnet, "vsgn": _vsgn, "laviti": _laviti}


def run(head: str, seed: int = 0, quick: bool = False) -> tuple[dict, list[dict]]:
    from egoflow.heads import runner
    from egoflow.recipes.additions import ablation
    res = []
    with tempfile.TemporaryDirectory() as tmp:
        b = BENCH[head](Path(tmp), seed, quick)
        for i, (name, h, t) in enumerate(ablation(b["recipe"], b["size"], b["budget"])):
            t0 = time.perf_counter()
            m = runner.train(head, b["store"], b["feature_set"], b["train"], Path(tmp) / f"run{i}",
                             val_annotations=b["val"], text_set=b["text_set"], head_overrides=h,
                             train_overrides={**t, "seed": seed, "device": "cpu", "progress": False})
            row = {"row": name, **{k: round(float(m[k]), 4) for k in b["metrics"]},
                   "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(row), flush=True)
            res.append(row)
    return b, res


def table(b: dict, res: list[dict], seed: int) -> str:
    from egoflow.recipes.additions import replaced
    main = b["metrics"][0]
    base = res[0][main]
    gone = replaced(b["recipe"], b["size"], b["budget"])
    lines = [f"{b['data_note']}; {b['size_note']}; budget {json.dumps(b['budget'])} in every row"
             + (f" (replacing the recipe's {', '.join(gone)})" if gone else "") + f"; seed {seed}", "",
             "| row | " + " | ".join(b["metrics"]) + f" | Δ {main} vs recipe |",
             "|---|" + "---|" * (len(b["metrics"]) + 1)]
    for r in res:
        lines.append(f"| {r['row']} | " + " | ".join(f"{r[k]:.4f}" for k in b["metrics"])
                     + f" | {r[main] - base:+.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", required=True, choices=sorted(BENCH))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="fewer videos and epochs (a smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    bench, results = run(args.head, args.seed, args.quick)
    print(table(bench, results, args.seed))
    print(f"total {time.perf_counter() - t0:.0f} s")
