"""VSGN training speed against the Ego4D MQ baseline's own code, on the same planted features, in one run.

    python benchmarks/vsgn_vs_reference.py --reference-dir /tmp/ref/episodic-memory [--epochs N] [--videos N]
        [--video-dim D] [--batch-size B] [--lr LR] [--out bench_out/vsgn_vs_reference.json]

The reference is EGO4D/episodic-memory MQ (VSGN with xGPN), extracted outside this repository and run by
benchmarks/ref_vsgn.py (its opts, dataset, model; Train.py's epoch on the CPU). egoflow runs `egoflow train vsgn
--recipe ego4d-vsgn` (heads.runner.train with the recipe's head options; the schedule is the baseline's: Adam,
lr, weight decay 1e-4, step decay) on the same clips, 1.875 features/s, 928 steps, the baseline's default sizes.
Epochs alternate in one process (egoflow, reference, ...), each side on its own random state. Printed: per-epoch
seconds of each (training steps; its own per-epoch validation: egoflow scores mAP, the reference computes its
validation loss), the ratios, both sides' validation mAP per epoch (the reference's from its own Infer.py +
Eval.py after each epoch, timed apart: `pip install pandas` for it, or `--no-reference-map` to time training
only), and how long egoflow takes to reach the reference's final mAP.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from egoflow.datasets.synthetic.mq import make_synthetic_mq
from egoflow.features_store import FeatureStore
from egoflow.heads import runner
from egoflow.heads.vsgn.head import REFERENCE_HEAD, REFERENCE_TRAIN, TRAIN_DEFAULTS
from egoflow.heads.vsgn.reference import load_reference_state_dict

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from train_vs_reference import _summary, _Swapped, paired, time_to  # noqa: E402  (benchmarks/ sibling)

FPS = 1.875  # the Ego4D MQ features' rate (SlowFast/Omnivore windows of 32 frames, stride 16, 30 fps)


def check_reference(ref_dir) -> Path:
    path = Path(ref_dir)
    if not (path / "MQ" / "Models" / "VSGN.py").is_file():
        print(f"vsgn_vs_reference: no EGO4D/episodic-memory tree at {ref_dir} (MQ/Models/VSGN.py missing): "
              "extract it there, e.g. `git clone https://github.com/EGO4D/episodic-memory`", file=sys.stderr)
        raise SystemExit(2)
    return path


def check_pandas(with_map: bool) -> None:
    """The reference's evaluation (Infer.py, Evaluation/ego4d) is written on pandas: refuse before training."""
    if with_map and importlib.util.find_spec("pandas") is None:
        print("vsgn_vs_reference: the reference's mAP (its Infer.py + Eval.py) needs pandas: `pip install pandas`, "
              "or --no-reference-map to time training only", file=sys.stderr)
        raise SystemExit(2)


def planted(tmp: Path, videos: int, dim: int, batch: int):
    """Planted MQ clips of 480 s (900 steps, under the 928 the baseline pads to); train and val clips cut to a
    multiple of ``batch`` (the baseline's loaders drop the last short batch)."""
    store = FeatureStore(str(tmp / "store.zarr"))
    d = make_synthetic_mq(store, num_videos=videos, clips_per_video=2, clip_sec=480.0, fps=FPS, dim=dim,
                          empty_clip_fraction=0.0, seed=0)
    train = d.train[:len(d.train) // batch * batch]
    val = d.val[:max(batch, len(d.val) // batch * batch)]
    if len(train) < batch or len(val) < batch:
        raise SystemExit(f"vsgn_vs_reference: {videos} videos give {len(d.train)} train / {len(d.val)} val clips, "
                         f"fewer than one batch of {batch}: raise --videos")
    return store, d, train, val


def egoflow_side(store, d, train, val, out: Path, epochs: int, batch: int, lr: float, between) -> list[dict]:
    rows: list[dict] = []
    real_fit = runner.fit

    def fit(model, criterion, train_set, collate, tcfg, evaluate=None, **kw):
        clock = {"t": time.perf_counter()}

        def timed(m):
            t1 = time.perf_counter()
            metrics = evaluate(m)
            t2 = time.perf_counter()
            rows.append({"epoch": len(rows) + 1, "train_s": t1 - clock["t"], "eval_s": t2 - t1,
                         "mAP": metrics["mAP"]})
            print(f"egoflow epoch {len(rows)}: {rows[-1]}", flush=True)
            between(len(rows), m, evaluate)
            clock["t"] = time.perf_counter()
            return metrics

        return real_fit(model, criterion, train_set, collate, tcfg, evaluate=timed, **kw)

    tr = {**TRAIN_DEFAULTS, **REFERENCE_TRAIN, "epochs": epochs, "batch_size": batch, "lr": lr, "seed": 0,
          "progress": False, "device": "cpu"}
    with mock.patch.object(runner, "fit", fit):
        runner.train("vsgn", store, d.feature_set, train, out, val_annotations=val,
                     head_overrides=dict(REFERENCE_HEAD), train_overrides=tr)
    return rows


def reach(ref_rows: list[dict], ego: list[dict]) -> dict:
    """Seconds each side needs to show the reference's final mAP: egoflow's train + own mAP per epoch; the
    reference's training steps + its Infer.py/Eval.py per epoch (what a user runs to see a number)."""
    target = ref_rows[-1]["mAP"]
    ref_timed = [{"train_s": r["train_s"], "eval_s": r["map_s"], "mAP": r["mAP"]} for r in ref_rows]
    return {"egoflow_s_to_reference_final_map": time_to(ego, "mAP", target),
            "reference_s_to_final_map": time_to(ref_timed, "mAP", target),
            "reference_map_s_per_epoch": statistics.median(r["map_s"] for r in ref_rows)}


def score_reference_weights(ref, model, evaluate) -> float | None:
    """The reference's current weights in a copy of egoflow's model, scored by egoflow's decoding + mAP: the two
    sides' mAPs differ by training *and* by post-processing (Infer.py's hard NMS before Soft-NMS); this keeps the
    training and changes only the post-processing. None if the two class orders differ (ids would not match)."""
    classes = json.loads(Path(ref.opt["moment_classes"]).read_text())
    if classes != {"Background": 0, **{name: i + 1 for i, name in enumerate(model.cfg.labels)}}:
        return None
    scratch = copy.deepcopy(model)
    load_reference_state_dict(scratch, ref.model.state_dict())
    return float(evaluate(scratch)["mAP"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-dir", required=True, help="an EGO4D/episodic-memory checkout (outside the repo)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--videos", type=int, default=12, help="planted videos, 2 clips of 480 s each (1/4 for val)")
    ap.add_argument("--video-dim", type=int, default=256, help="feature width (the baseline's: 2304)")
    ap.add_argument("--batch-size", type=int, default=4, help="both sides (the baseline's: 32)")
    ap.add_argument("--lr", type=float, default=5e-5, help="both sides (the baseline's default)")
    ap.add_argument("--no-reference-map", action="store_true", help="skip the reference's Infer.py + Eval.py")
    ap.add_argument("--out", default="bench_out/vsgn_vs_reference.json")
    a = ap.parse_args(argv)
    ref_dir = check_reference(a.reference_dir)
    with_map = not a.no_reference_map
    check_pandas(with_map)
    from ref_vsgn import ReferenceVSGN  # noqa: E402  (imports the reference tree's modules when built)

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, d, train, val = planted(tmp, a.videos, a.video_dim, a.batch_size)
        uids = sorted({c.video_uid for c in train + val})
        feats = {u: np.asarray(v.feats, np.float32) for u, v in store.load_feature_set(d.feature_set, uids).items()}
        ref = ReferenceVSGN(ref_dir, tmp / "ref", {"train": train, "validation": val}, feats, FPS,
                            dict(input_feat_dim=a.video_dim, decoder_num_classes=len(d.labels) + 1,
                                 batch_size=a.batch_size, train_lr=a.lr, use_xGPN=True))
        ref_rows: list[dict] = []

        def ref_epoch(epoch: int, model, evaluate) -> None:
            ref_rows.append({"epoch": epoch, **ref.epoch(epoch - 1, with_map)})
            ref_rows[-1]["mAP_egoflow_scoring"] = score_reference_weights(ref, model, evaluate)
            print(f"reference epoch {epoch}: {ref_rows[-1]}", flush=True)

        ego = egoflow_side(store, d, train, val, tmp / "egoflow", a.epochs, a.batch_size, a.lr, _Swapped(ref_epoch))
    r, e = _summary(ref_rows), _summary(ego)
    res = {"head": "vsgn", "num_train": len(train), "num_val": len(val), "video_dim": a.video_dim,
           "batch_size": a.batch_size, "lr": a.lr, "epochs": a.epochs, "reference": {**r, "per_epoch": ref_rows},
           "egoflow": {**e, "per_epoch": ego},
           "speedup_train_steps": paired(ref_rows, ego, lambda x: x["train_s"]),
           "speedup_epoch": paired(ref_rows, ego, lambda x: x["train_s"] + x["eval_s"]),
           **(reach(ref_rows, ego) if with_map else {}),
           "load_before": load0, "load_after": os.getloadavg(), "torch_threads": torch.get_num_threads()}
    print(f"\nvsgn: {len(train)} train / {len(val)} val clips of 900 steps, {a.video_dim}-dim, batch {a.batch_size}, "
          f"lr {a.lr:g}, {a.epochs} epochs")
    print(f"median s/epoch: reference {r['epoch_s']:.2f} (steps {r['train_s_per_epoch']:.2f}), egoflow "
          f"{e['epoch_s']:.2f} (steps {e['train_s_per_epoch']:.2f})")
    print(f"egoflow faster (median of epoch-by-epoch ratios): x{res['speedup_epoch']:.2f} per epoch as each runs "
          f"it, x{res['speedup_train_steps']:.2f} on training steps; egoflow mAP by epoch "
          f"{[round(x['mAP'], 3) for x in ego]}")
    if with_map:
        print(f"reference mAP by epoch {[round(x['mAP'], 3) for x in ref_rows]} (Infer.py + Eval.py: median "
              f"{res['reference_map_s_per_epoch']:.1f} s each, apart from its epoch time)")
        t = res["egoflow_s_to_reference_final_map"]
        print(f"final mAP: reference {ref_rows[-1]['mAP']:.4f}, egoflow {ego[-1]['mAP']:.4f}; egoflow reaches the "
              f"reference's final in {'never' if t is None else f'{t:.1f} s'} (reference: "
              f"{res['reference_s_to_final_map']:.1f} s of training + Infer/Eval per epoch)")
        print(f"the reference's weights scored by egoflow's post-processing, by epoch "
              f"{[None if x['mAP_egoflow_scoring'] is None else round(x['mAP_egoflow_scoring'], 3) for x in ref_rows]}")
    print(f"load average before {load0[0]:.2f}, after {res['load_after'][0]:.2f}; torch threads "
          f"{res['torch_threads']}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
