"""Training speed and accuracy of egoflow's heads against the public reference code, on the same planted features.

    python benchmarks/train_vs_reference.py --reference-dir /tmp/ref/episodic-memory [--head vslnet] [--epochs N]
        [--lr LR] [--quick] [--out bench_out/train_vs_reference.json]

The reference is EGO4D/episodic-memory (NLQ/VSLNet: the Ego4D NLQ baseline), extracted outside this repository:
    git clone https://github.com/EGO4D/episodic-memory /tmp/ref/episodic-memory   (or `git archive` of a mirror)
It runs as its user runs it (benchmarks/ref_vslnet.py: its data preparation, dataset, loaders, model, optimiser,
schedule and per-epoch evaluation, with the shims listed there) on Ego4D-format files written from the planted
benchmark; egoflow runs `egoflow train vslnet --recipe ego4d-vslnet` (heads.runner.train with the recipe's values)
on the same features in its store. Epochs alternate in one process (reference, egoflow, reference, ...) so load
from other processes hits both alike, each side with its own random state. Printed: per-epoch wall time of each
(training steps, evaluation), the ratio, the final R@1 of each, and egoflow's time to the reference's final R@1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from egoflow.datasets.synthetic.nlq import make_synthetic_nlq, write_nlq_json
from egoflow.features_store import FeatureStore
from egoflow.heads import runner
from egoflow.heads.vslnet.head import BASELINE_HEAD, BASELINE_TRAIN

HERE = Path(__file__).parent
NEEDS = {"vslnet": "NLQ/VSLNet/main.py"}
METRICS = ("R@1 IoU=0.3", "R@1 IoU=0.5")
# planted NLQ sizes: full = Ego4D-like clips (120 s at the baseline's 1.875 features/s, resampled to 128 steps)
SIZES = {True: dict(num_videos=12, clip_sec=64.0, video_dim=64, epochs=2),
         False: dict(num_videos=96, clip_sec=120.0, video_dim=1536, epochs=10)}


def check_reference(ref_dir, head: str) -> Path:
    """The reference tree's path; exits with one line (code 2) when the file ``head`` needs is not there."""
    path = Path(ref_dir) if ref_dir else None
    if path is None or not (path / NEEDS[head]).is_file():
        print(f"train_vs_reference: no EGO4D/episodic-memory tree at {ref_dir} ({NEEDS[head]} missing): extract "
              "it there, e.g. `git clone https://github.com/EGO4D/episodic-memory` or `git archive` of a mirror",
              file=sys.stderr)
        raise SystemExit(2)
    return path


def planted_nlq(tmp: Path, quick: bool, video_dim: int | None = None, num_videos: int | None = None):
    """Planted NLQ benchmark in a store under ``tmp`` (features at 1.875/s, 768-dim BERT-sized text tokens)."""
    s = SIZES[bool(quick)]
    store = FeatureStore(str(tmp / "store.zarr"))
    data = make_synthetic_nlq(store, num_videos=num_videos or s["num_videos"], clip_sec=s["clip_sec"], fps=1.875,
                              video_dim=video_dim or s["video_dim"], text_dim=768, seed=0)
    return store, data


def egoflow_side(store, data, out: Path, epochs: int, between=None, seed: int = 0, lr: float | None = None) -> dict:
    """`egoflow train vslnet --recipe ego4d-vslnet` for ``epochs``: per-epoch train_s (steps), eval_s, metrics.

    ``between(epoch)`` runs after each epoch's evaluation (the reference's epoch) and is not counted.
    """
    rows: list[dict] = []
    real_fit = runner.fit

    def fit(model, criterion, train_set, collate, tcfg, evaluate=None, **kw):
        clock = {"t": time.perf_counter()}

        def timed(m):
            t1 = time.perf_counter()
            metrics = evaluate(m)
            t2 = time.perf_counter()
            rows.append({"epoch": len(rows) + 1, "train_s": t1 - clock["t"], "eval_s": t2 - t1,
                         **{k: metrics[k] for k in METRICS}})
            print(f"egoflow epoch {len(rows)}: {rows[-1]}", flush=True)
            if between is not None:
                between(len(rows))
            clock["t"] = time.perf_counter()
            return metrics

        return real_fit(model, criterion, train_set, collate, tcfg, evaluate=timed, **kw)

    train = {**BASELINE_TRAIN, "epochs": epochs, "seed": seed, "progress": False, "device": "cpu"}
    if lr is not None:  # the same on both sides (run_vslnet)
        train["lr"] = lr
    with mock.patch.object(runner, "fit", fit):
        final = runner.train("vslnet", store, data.feature_set, data.train, out, val_annotations=data.val,
                             text_set=data.text_set, head_overrides=dict(BASELINE_HEAD), train_overrides=train)
    return {"epochs": rows, "final": {k: final[k] for k in METRICS}, "best_epoch": final["best_epoch"]}


class _Swapped:
    """Runs the reference with its own python / numpy / torch random state, so alternating leaves both sides'
    draws as they would be alone."""

    def __init__(self, fn):
        self.fn, self.state = fn, self._get()

    @staticmethod
    def _get():
        return random.getstate(), np.random.get_state(), torch.get_rng_state()

    @staticmethod
    def _set(s):
        random.setstate(s[0])
        np.random.set_state(s[1])
        torch.set_rng_state(s[2])

    def __call__(self, *a):
        mine = self._get()
        self._set(self.state)
        try:
            with torch.enable_grad():
                return self.fn(*a)
        finally:
            self.state = self._get()
            self._set(mine)


def time_to(rows: list[dict], key: str, target: float) -> float | None:
    """Cumulative seconds (train + eval) until the first epoch whose ``key`` reaches ``target``; None if never."""
    total = 0.0
    for r in rows:
        total += r["train_s"] + r["eval_s"]
        if r[key] >= target - 1e-9:
            return total
    return None


def paired(ref_rows: list[dict], ego_rows: list[dict], seconds) -> float:
    """Median over epochs of reference seconds / egoflow seconds (``seconds(row)``), epoch by epoch."""
    return statistics.median(seconds(a) / max(seconds(b), 1e-9) for a, b in zip(ref_rows, ego_rows))


def _summary(side: list[dict]) -> dict:
    tr = [r["train_s"] for r in side]
    ev = [r["eval_s"] for r in side]
    return {"train_s_per_epoch": statistics.median(tr), "eval_s_per_epoch": statistics.median(ev),
            "epoch_s": statistics.median([a + b for a, b in zip(tr, ev)]), "total_s": sum(tr) + sum(ev)}


def run_vslnet(ref_dir: Path, tmp: Path, quick: bool, epochs: int, video_dim=None, num_videos=None,
               lr: float | None = None) -> dict:
    sys.path.insert(0, str(HERE))
    from ref_vslnet import ReferenceVSLNet  # noqa: E402  (benchmarks/ sibling, imports the reference tree)

    store, data = planted_nlq(tmp, quick, video_dim, num_videos)
    paths = {s: write_nlq_json(q, tmp / f"{s}.json") for s, q in (("train", data.train), ("val", data.val),
                                                                  ("test", data.val))}
    nlq_json = {s: json.loads(p.read_text()) for s, p in paths.items()}
    uids = sorted({q.video_uid for q in data.train + data.val})
    feats = {u: np.asarray(v.feats, dtype=np.float32)
             for u, v in store.load_feature_set(data.feature_set, uids).items()}
    strings = sorted({q.query for q in data.train + data.val})
    tf = store.load_texts(data.text_set, strings)
    # the text set's tokens as egoflow's loader keeps them (valid tokens, float16)
    tokens = {s: np.asarray(tf.tokens[i, :max(1, min(int(tf.lengths[i]), BASELINE_HEAD["max_pos_len"]))],
                            dtype=np.float16) for i, s in enumerate(strings)}
    train = {**BASELINE_TRAIN, **({"lr": lr} if lr is not None else {})}
    ref = ReferenceVSLNet(ref_dir, tmp / "ref", nlq_json, feats, tokens, int(data.video_dim), epochs,
                          BASELINE_HEAD, train)
    del feats
    ref_rows: list[dict] = []

    def ref_epoch(epoch: int) -> None:
        ref_rows.append({"epoch": epoch, **ref.epoch(epoch - 1)})
        print(f"reference epoch {epoch}: {ref_rows[-1]} (load {os.getloadavg()[0]:.1f})", flush=True)

    ref_first = _Swapped(ref_epoch)
    ego = egoflow_side(store, data, tmp / "egoflow", epochs, between=ref_first, lr=lr)
    ref_final = {k: ref_rows[-1][k] for k in METRICS}
    r, e = _summary(ref_rows), _summary(ego["epochs"])
    return {"head": "vslnet", "num_train": len(data.train), "num_val": len(data.val), "video_dim": data.video_dim,
            "epochs": epochs, "lr": train["lr"], "reference": {**r, "final": ref_final, "per_epoch": ref_rows},
            "egoflow": {**e, "final": {k: ego["epochs"][-1][k] for k in METRICS}, "best_epoch": ego["best_epoch"],
                        "per_epoch": ego["epochs"]},
            # each epoch of egoflow is paired with the reference's epoch run right after it (same load): the
            # median of the paired ratios is steadier than a ratio of medians when other jobs come and go
            "speedup_train_steps": paired(ref_rows, ego["epochs"], lambda x: x["train_s"]),
            "speedup_epoch": paired(ref_rows, ego["epochs"], lambda x: x["train_s"] + x["eval_s"]),
            "speedup_total": r["total_s"] / e["total_s"],
            "egoflow_s_to_reference_final": {k: time_to(ego["epochs"], k, ref_final[k]) for k in METRICS},
            "reference_total_s": r["total_s"]}


def _print(res: dict) -> None:
    r, e = res["reference"], res["egoflow"]
    print(f"\n{res['head']}: {res['num_train']} train / {res['num_val']} val queries, {res['epochs']} epochs, "
          f"lr {res['lr']:g} (both sides)")
    print("epoch  ref train_s  ref eval_s  egoflow train_s  egoflow eval_s  ref R@1@0.3  egoflow R@1@0.3")
    for a, b in zip(r["per_epoch"], e["per_epoch"]):
        print(f"{a['epoch']:5d}  {a['train_s']:11.2f}  {a['eval_s']:10.2f}  {b['train_s']:15.2f}  "
              f"{b['eval_s']:14.2f}  {a['R@1 IoU=0.3']:11.4f}  {b['R@1 IoU=0.3']:15.4f}")
    print(f"median s/epoch: reference {r['epoch_s']:.2f} (steps {r['train_s_per_epoch']:.2f}), egoflow "
          f"{e['epoch_s']:.2f} (steps {e['train_s_per_epoch']:.2f})")
    print(f"egoflow faster (median of epoch-by-epoch ratios): x{res['speedup_epoch']:.2f} per epoch as each runs "
          f"it, x{res['speedup_train_steps']:.2f} on training steps; x{res['speedup_total']:.2f} in total time")
    for k in METRICS:
        t = res["egoflow_s_to_reference_final"][k]
        print(f"final {k}: reference {r['final'][k]:.4f}, egoflow {e['final'][k]:.4f}; egoflow reaches the "
              f"reference's final in {'never' if t is None else f'{t:.1f} s'} (reference: {r['total_s']:.1f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-dir", required=True, help="an EGO4D/episodic-memory checkout (outside the repo)")
    ap.add_argument("--head", default="vslnet", choices=sorted(NEEDS))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="12 small videos, 64-dim features, 2 epochs")
    ap.add_argument("--video-dim", type=int, default=None)
    ap.add_argument("--videos", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="peak lr of both sides (default: the baseline's "
                    f"{BASELINE_TRAIN['lr']:g}; the planted set needs more to be learned in a few epochs)")
    ap.add_argument("--out", default="bench_out/train_vs_reference.json")
    a = ap.parse_args(argv)
    ref_dir = check_reference(a.reference_dir, a.head)
    epochs = a.epochs or SIZES[a.quick]["epochs"]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_vslnet(ref_dir, Path(tmp), a.quick, epochs, a.video_dim, a.videos, a.lr)
    res.update(load_before=load0, load_after=os.getloadavg(), torch_threads=torch.get_num_threads(),
               cpu_count=os.cpu_count(), torch=torch.__version__)
    _print(res)
    print(f"load average before {load0[0]:.2f}, after {res['load_after'][0]:.2f} (1 min; {os.cpu_count()} cores, "
          f"torch threads {res['torch_threads']})")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
