"""VideoTranslate: batched candidate ranking vs the naive re-encoding loop, and quality on the planted videos.

    python benchmarks/heads_translate.py [--quick] [--device auto|cpu|cuda] [--part speed|quality|additions|both]

speed: B clips x C = 100 candidate class names, candidates scored per second by ``rank.candidate_scores``
(encoder once per clip, decoder batched over candidates) and by ``rank.naive_scores`` (encoder again for every
candidate, one candidate at a time), same model, same run; the two score matrices are checked equal.
quality: pretrain on the narrations of the planted narrated videos, then CharadesEgo mAP / EK-100 top-1 /
EgoMCQ accuracy zero-shot (the pretraining run) and after fine-tuning, against chance; captioning BLEU-4 /
CIDEr against the copy-the-most-frequent-narration baseline. Every network is randomly initialised (no weights
offline): the numbers measure the recipe, not T5.
additions: each egoflow addition against the paper recipe (videotranslate-*-paper: [CLS]-style token, gen+disc
fusion, inverse-sqrt schedule), one changed at a time, same planted data, same seeds, same tiny network (the
paper's t5-large cannot be trained here): CharadesEgo mAP and EK-100 top-1 after fine-tuning one pretraining
run, and captioning CIDEr of pretraining under either schedule.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from egoflow.device import resolve_device
from egoflow.heads.translate.model import Config, build
from egoflow.heads.translate.rank import candidate_scores, naive_scores, pad_ids

SPEED = dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4, dropout=0.0)
TINY = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4, dropout=0.0,
            num_frames=8)


def speed(quick: bool, device: str) -> dict:
    dev = resolve_device(device)
    torch.manual_seed(0)
    b, c, t, vocab = (4 if quick else 8), 100, 16, 1000
    model, _, _ = build(Config(video_dim=256, vocab_size=vocab, rank_chunk=100, **SPEED))
    model.to(dev).eval()
    batch = {"prefix_ids": torch.randint(4, vocab, (b, 3)), "prefix_mask": torch.ones(b, 3, dtype=torch.bool),
             "feats": torch.randn(b, t, 256), "mask": torch.ones(b, t, dtype=torch.bool)}
    batch = {k: v.to(dev) for k, v in batch.items()}
    g = torch.Generator().manual_seed(1)
    cands = [torch.randint(4, vocab, (int(n),), generator=g).tolist() + [1]
             for n in torch.randint(1, 6, (c,), generator=g)]
    ids, m = pad_ids(cands, 0, dev)
    out = {}
    for name, fn in (("batched", lambda: candidate_scores(model, batch, ids, m)),
                     ("naive", lambda: naive_scores(model, batch, ids, m))):
        fn()  # warm-up
        reps = 1 if name == "naive" else 3
        t0 = time.perf_counter()
        for _ in range(reps):
            s = fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out[name] = s.cpu()
        out[f"{name} candidates/s"] = b * c * reps / (time.perf_counter() - t0)
    diff = float((out.pop("batched") - out.pop("naive")).abs().max())
    return {"clips": b, "candidates": c, "device": str(dev), **{k: round(v, 1) for k, v in out.items()},
            "speed-up": round(out["batched candidates/s"] / out["naive candidates/s"], 2), "max |diff|": diff}


def quality(quick: bool, device: str) -> dict:
    from egoflow.datasets.charades_ego import label_matrix, load_charades_ego
    from egoflow.datasets.synthetic.actions import (
        write_narrated_egomcq,
        write_narrated_ek100,
    )
    from egoflow.datasets.synthetic.charades import write_narrated_charades
    from egoflow.datasets.synthetic.narrated import (
        NarratedSpec,
        make_narrated,
        write_to_store,
    )
    from egoflow.evaluate.benchmarks import get_benchmark
    from egoflow.evaluate.captions import caption_metrics, narration_references
    from egoflow.evaluate.classification import charades_map
    from egoflow.features_store import FeatureStore
    from egoflow.heads import runner
    from egoflow.heads.translate.head import most_frequent_caption, write_narrations

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        d = make_narrated(NarratedSpec(num_videos=24 if quick else 64, num_concepts=10, dim=32, seed=0))
        uids = sorted(d.videos)
        tr, va = uids[: int(0.75 * len(uids))], uids[int(0.75 * len(uids)):]
        ch = write_narrated_charades(d, {"train": tr, "test": va}, root / "ch")
        ek = write_narrated_ek100(d, {"train": tr, "validation": va}, root / "ek")
        mcq = write_narrated_egomcq(d, va, root / "egomcq.json")
        store = FeatureStore(str(root / "s.zarr"))
        fs, _ = write_to_store(d, store)
        train_n = [n for n in d.narrations if n.video_uid in tr]
        val_n = [n for n in d.narrations if n.video_uid in va]
        nva = write_narrations(val_n, root / "nva.json")
        tr_cfg = dict(epochs=15 if quick else 30, batch_size=16, lr=2e-3, schedule="cosine", progress=False,
                      device=device, seed=0, eval_every=100)
        t0 = time.perf_counter()
        pre = runner.train("translate", store, fs, train_n, root / "pre", val_annotations=nva, head_overrides=TINY,
                           train_overrides=tr_cfg)
        res = {"pretrain_s": round(time.perf_counter() - t0, 1), "captions": {k: pre[k] for k in
                                                                             ("BLEU-4", "METEOR", "CIDEr")}}
        refs = narration_references(val_n)
        base = caption_metrics(refs, most_frequent_caption(train_n, refs))
        res["captions baseline (most frequent narration)"] = {k: base[k] for k in ("BLEU-4", "METEOR", "CIDEr")}
        y = label_matrix(load_charades_ego(ch["test"]), 10)
        rng = np.random.default_rng(0)
        chance = {"charades mAP": float(np.mean([charades_map(rng.random(y.shape), y) for _ in range(50)])),
                  "ek100 verb top1": 1 / 4, "ek100 noun top1": 1 / 10, "egomcq inter": 1 / 5}
        zs = {"charades mAP": get_benchmark("charades").evaluate(ch["test"], runner.predict(
            "translate-charades", root / "pre", store, ch["test"], root / "zs.txt", classes=str(ch["classes"])))["mAP"]}
        z = get_benchmark("ek100-ar").evaluate(ek["validation"], runner.predict(
            "translate-ek100", root / "pre", store, ek["validation"], root / "zs_ek.json"))
        zs.update({"ek100 verb top1": z["verb top1"], "ek100 noun top1": z["noun top1"]})
        z = get_benchmark("ek100-ar").evaluate(ek["validation"], runner.predict(
            "translate-ek100", root / "pre", store, ek["validation"], root / "zs_ek.json", prompt="#C C handles {}"))
        zs.update({"ek100 verb top1 (prompt '#C C handles {}')": z["verb top1"],
                   "ek100 noun top1 (prompt '#C C handles {}')": z["noun top1"]})
        zs["egomcq inter"] = get_benchmark("egomcq").evaluate(mcq, runner.predict(
            "translate-egomcq", root / "pre", store, mcq, root / "mcq.json"))["Inter-video"]
        ft_cfg = {**tr_cfg, "epochs": 8 if quick else 15}
        ft = {}
        for mode in ("generative", "discriminative"):
            m = runner.train("translate-charades", store, fs, ch["train"], root / f"ch_{mode}",
                             val_annotations=ch["test"], init=str(root / "pre"), head_overrides={"mode": mode},
                             train_overrides=ft_cfg)
            e = runner.train("translate-ek100", store, fs, ek["train"], root / f"ek_{mode}",
                             val_annotations=ek["validation"], init=str(root / "pre"),
                             head_overrides={"mode": mode}, train_overrides=ft_cfg)
            ft[mode] = {"charades mAP": m["mAP"], "ek100 verb top1": e["verb top1"],
                        "ek100 noun top1": e["noun top1"], "ek100 action top1": e["action top1"]}
        res.update(chance=chance, zero_shot=zs, fine_tuned=ft, num_train_videos=len(tr), num_val_videos=len(va))
        return res


def _planted(root: Path, quick: bool):
    from egoflow.datasets.synthetic.actions import write_narrated_ek100
    from egoflow.datasets.synthetic.charades import write_narrated_charades
    from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
    from egoflow.features_store import FeatureStore
    from egoflow.heads.translate.head import write_narrations

    d = make_narrated(NarratedSpec(num_videos=24 if quick else 64, num_concepts=10, dim=32, seed=0))
    uids = sorted(d.videos)
    tr, va = uids[: int(0.75 * len(uids))], uids[int(0.75 * len(uids)):]
    store = FeatureStore(str(root / "s.zarr"))
    fs, _ = write_to_store(d, store)
    return dict(store=store, fs=fs, ch=write_narrated_charades(d, {"train": tr, "test": va}, root / "ch"),
                ek=write_narrated_ek100(d, {"train": tr, "validation": va}, root / "ek"),
                ntr=[n for n in d.narrations if n.video_uid in tr],
                nva=write_narrations([n for n in d.narrations if n.video_uid in va], root / "nva.json"))


def additions(quick: bool, device: str, seeds: list[int]) -> dict:
    """Rows: the paper recipe, then the recipe with one egoflow option instead; mean over ``seeds``."""
    from egoflow.evaluate.benchmarks import get_benchmark
    from egoflow.heads import runner
    from egoflow.heads.translate.head import PAPER_CLASSIFY_HEAD, PAPER_TRAIN

    paper = {k: v for k, v in PAPER_CLASSIFY_HEAD.items() if k != "size"}  # tiny network instead of t5-large
    variants = {"paper recipe (token, gen+disc, inverse-sqrt)": ({}, {}),
                "egoflow mean pooling (disc_pool=mean)": ({"disc_pool": "mean"}, {}),
                "egoflow layers only (fusion=disc)": ({"fusion": "disc"}, {}),
                "egoflow cosine schedule": ({}, {"schedule": "cosine"}),
                "egoflow defaults (mean, layers only, cosine)": ({"disc_pool": "mean", "fusion": "disc"},
                                                                 {"schedule": "cosine"})}
    rows: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        w = _planted(root, quick)
        for seed in seeds:
            base = dict(epochs=15 if quick else 30, batch_size=16, lr=2e-3, progress=False, device=device, seed=seed,
                        eval_every=100)
            for sched in ("inverse-sqrt", "cosine"):  # pretraining under either schedule: captioning CIDEr
                m = runner.train("translate", w["store"], w["fs"], w["ntr"], root / f"pre_{sched}_{seed}",
                                 val_annotations=w["nva"], head_overrides=TINY,
                                 train_overrides={**base, "schedule": sched})
                rows.setdefault(f"pretraining, {sched}", []).append({"captions CIDEr": m["CIDEr"]})
            pre = str(root / f"pre_{PAPER_TRAIN['schedule']}_{seed}")
            ft = {**base, **PAPER_TRAIN, "epochs": 8 if quick else 15}
            for name, (head, train) in variants.items():
                out, sides = {}, {"gen": {}, "disc": {}}
                for bench, ann, val in (("charades", w["ch"]["train"], w["ch"]["test"]),
                                        ("ek100", w["ek"]["train"], w["ek"]["validation"])):
                    run = root / f"{bench}_{seed}_{list(variants).index(name)}"
                    m = runner.train(f"translate-{bench}", w["store"], w["fs"], ann, run, val_annotations=val,
                                     init=pre, head_overrides={**paper, **head}, train_overrides={**ft, **train})
                    out.update(_class_metrics(bench, m))
                    if name.startswith("paper"):  # the same fused run scored by one side only (predict's fusion=)
                        for f in sides:
                            extra = {"classes": str(w["ch"]["classes"])} if bench == "charades" else {}
                            pred = runner.predict(f"translate-{bench}", run, w["store"], val,
                                                  root / f"{f}_{bench}.json", fusion=f, **extra)
                            r = get_benchmark("charades" if bench == "charades" else "ek100-ar").evaluate(val, pred)
                            sides[f].update(_class_metrics(bench, r))
                rows.setdefault(name, []).append(out)
                for f, vals in sides.items():
                    if vals:
                        rows.setdefault(f"paper run scored with fusion={f} at predict", []).append(vals)
            print(f"seed {seed} done", flush=True)
    return {name: {k: round(float(np.mean([r[k] for r in rs])), 3) for k in rs[0]} for name, rs in rows.items()}


def _class_metrics(bench: str, m: dict) -> dict:
    if bench == "charades":
        return {"charades mAP": m["mAP"]}
    return {f"ek100 {k} top1": m[f"{k} top1"] for k in ("verb", "noun", "action")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--part", choices=("speed", "quality", "additions", "both"), default="both")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="additions: seeds averaged")
    a = ap.parse_args()
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    out = {}
    if a.part in ("speed", "both"):
        out["speed"] = speed(a.quick, a.device)
        print(json.dumps(out["speed"], indent=1), flush=True)
    if a.part in ("quality", "both"):
        out["quality"] = quality(a.quick, a.device)
        print(json.dumps(out["quality"], indent=1, default=float), flush=True)
    if a.part == "additions":
        print(json.dumps(additions(a.quick, a.device, a.seeds), indent=1, default=float), flush=True)


if __name__ == "__main__":
    main()
