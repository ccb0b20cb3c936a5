"""LAVITI: training chunks/s and peak memory for one 600 s chunk at 6 fps; zero-shot NLQ on planted videos.

    python benchmarks/heads_laviti.py [--quick] [--device auto|cpu|cuda]

`run(quick)` is what benchmarks/heads_train.py calls. Three measurements in one run:

1. **Throughput / memory at the paper's scale**: the default head (6+6 layers, 8x64 width, 256 queries, kernel 7)
   on a 600 s chunk at 6 fps of 512-d CLIP features (3600 frames -> 515 tokens) with 130 narrations (Ego4D's
   ~13 per minute): training steps (forward + matching + backward + AdamW) per second. Peak memory is
   ``torch.cuda.max_memory_allocated`` on CUDA; on CPU it is the peak RSS growth of a fresh child process
   during one training step (so imports and other benchmarks do not count). Quick: 2 layers each, 1 step.
2. **Zero-shot NLQ** on synthetic narrated videos: pretrain a tiny head on 48 videos' narrations, ask NLQ
   queries on 8 held-out videos; R@1/R@5 at IoU 0.3/0.5 against chance (the same moments ranked by random
   query vectors).
3. **CharadesEgo** fine-tuning speed of the default head on 30 s videos at 6 fps (batches of 16), and, on
   planted videos (class names a different wording of the narrated concepts): pretrain on narrations of one set
   of videos, then test-split mAP of the zero-shot model, of the model fine-tuned on the train split, and of the
   same fine-tune from scratch, against chance (random scores).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time

import numpy as np
import torch


def _batch(T: int, D: int, M: int, seed: int = 0) -> dict:
    from egoflow.heads.laviti.data import Chunk, NarratedChunks, collate, narration_bounds
    rng = np.random.default_rng(seed)
    times = (np.arange(T) + 0.5) / 6.0
    t = np.sort(rng.uniform(0, T / 6.0, M))
    lo, hi = narration_bounds(t, T / 6.0, 0.5, 4.0)
    text = rng.normal(size=(M, D)).astype(np.float32)
    c = Chunk("bench", 0.0, T / 6.0, rng.normal(size=(T, D)).astype(np.float32), times, t, lo, hi, text)
    return collate([NarratedChunks([c], 256, seed=0)[0]])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _step_memory(overrides: dict, q) -> None:
    """Child process: peak RSS growth (MB) of one training step on one 600 s chunk."""
    torch.set_num_threads(2)
    from egoflow.heads.laviti import Config, build
    model, criterion, _ = build(Config(**overrides))
    batch = _batch(3600, 512, 130)
    base = _rss_mb()
    criterion(model(batch), batch)["loss"].backward()
    q.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)


def scale(quick: bool, device: str) -> dict:
    from egoflow.device import resolve_device
    from egoflow.heads.laviti import Config, build
    from egoflow.heads.train import move_to
    dev = resolve_device(device)
    overrides = dict(enc_layers=2, dec_layers=2) if quick else {}
    torch.manual_seed(0)
    model, criterion, _ = build(Config(**overrides))
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = move_to(_batch(3600, 512, 130), dev)
    steps = 1 if quick else 3

    def step():
        loss = criterion(model(batch), batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up: allocator, kernels
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_step_memory, args=(overrides, q))
        p.start()
        peak = q.get(timeout=600)
        p.join()
    return {"device": str(dev), "layers": "2+2" if quick else "6+6",
            "params": sum(p.numel() for p in model.parameters()), "chunk_frames": 3600,
            "chunk_tokens": -(-3600 // 7), "train_chunks_per_s": round(steps / dt, 3),
            "peak_mem_per_600s_chunk_MB": round(peak, 1)}


def zero_shot(quick: bool, device: str) -> dict:
    from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
    from egoflow.evaluate.nlq import evaluate_nlq
    from egoflow.features_store import FeatureStore
    from egoflow.heads import runner
    from egoflow.heads.laviti.zeroshot import nlq_zero_shot
    data = make_narrated(NarratedSpec(num_videos=56, seed=0))
    held = {f"narrated{i:03d}" for i in range(48, 56)}
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(f"{tmp}/s.zarr")
        fs, ts = write_to_store(data, store)
        head = dict(heads=2, head_dim=16, enc_layers=2, dec_layers=2, num_queries=16, num_time_embeddings=64,
                    kernel=3, dropout=0.0)
        epochs = 30 if quick else 60
        t0 = time.perf_counter()
        m = runner.train("laviti", store, fs, [n for n in data.narrations if n.video_uid not in held], f"{tmp}/run",
                         val_annotations=[q for q in data.queries if q.video_uid in held], text_set=ts,
                         head_overrides=head, train_overrides=dict(epochs=epochs, batch_size=4, lr=2e-3,
                         schedule="constant", eval_every=10, device=device, progress=False))
        train_s = time.perf_counter() - t0
        model, decode, _, _ = runner.load_run(f"{tmp}/run", "laviti")
        val = [q for q in data.queries if q.video_uid in held]
        rng = np.random.default_rng(0)
        rand = {q.query: rng.normal(size=data.spec.dim) for q in val}
        chance = evaluate_nlq(val, nlq_zero_shot(model, decode, store.load_feature_set(fs, sorted(held)), val, rand,
                                                 model.cfg))
    keys = ("R@1 IoU=0.3", "R@5 IoU=0.3", "R@1 IoU=0.5", "R@5 IoU=0.5", "mIoU")
    return {"zs_num_queries": len(val), "zs_epochs": epochs, "zs_train_s": round(train_s, 1),
            **{f"zs {k}": round(m[k], 3) for k in keys}, **{f"chance {k}": round(chance[k], 3) for k in keys[:4]}}


def charades_scale(quick: bool, device: str) -> dict:
    """Fine-tuning steps/s at CharadesEgo's scale: the default head, batches of 16 videos of 30 s at 6 fps
    (180 frames -> 26 tokens), 7 actions each, 157 classes."""
    from egoflow.device import resolve_device
    from egoflow.heads.laviti import CharadesConfig, build_charades
    from egoflow.heads.laviti.charades_data import ActionChunk, ActionChunks, collate_actions
    from egoflow.heads.laviti.data import Chunk
    from egoflow.heads.train import move_to
    dev, rng = resolve_device(device), np.random.default_rng(0)
    cfg = CharadesConfig(**(dict(enc_layers=2, dec_layers=2) if quick else {}))  # 157 classes
    torch.manual_seed(0)
    model, criterion, _ = build_charades(cfg)
    model.to(dev)
    class_emb = rng.normal(size=(157, 512)).astype(np.float32)
    chunks = []
    for i in range(16):
        s = np.sort(rng.uniform(0, 25, 7))
        labels = np.zeros(157, bool)
        cls = rng.choice(157, 7, replace=False)
        labels[cls] = True
        chunks.append(ActionChunk(Chunk(f"v{i}", 0.0, 30.0, rng.normal(size=(180, 512)).astype(np.float32),
                                        (np.arange(180) + 0.5) / 6), s, s + 5, cls, labels))
    batch = move_to(collate_actions([ActionChunks(chunks, class_emb, 256)[i] for i in range(16)]), dev)
    criterion.set_class_embeddings(class_emb)
    criterion.to(dev)
    opt = torch.optim.AdamW(list(model.parameters()) + list(criterion.parameters()), lr=5e-5)

    def step():
        loss = criterion(model(batch), batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    steps = 1 if quick else 3
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return {"ch_layers": "2+2" if quick else "6+6", "ch_finetune_videos_per_s": round(
        16 * steps / (time.perf_counter() - t0), 2)}


def charades(quick: bool, device: str) -> dict:
    """CharadesEgo on planted videos: pretrain on narrations, then zero-shot vs fine-tuned (vs from scratch)."""
    from egoflow.datasets.charades_ego import label_matrix, load_charades_ego
    from egoflow.datasets.synthetic.charades import write_narrated_charades
    from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
    from egoflow.evaluate.classification import charades_map
    from egoflow.features_store import FeatureStore
    from egoflow.heads import runner
    n_pre, n_train, n_test = (40, 32, 24) if quick else (96, 64, 64)
    data = make_narrated(NarratedSpec(num_videos=n_pre + n_train + n_test, num_concepts=12, dim=32, seed=0))
    uids = sorted(data.videos)
    head = dict(heads=2, head_dim=16, enc_layers=2, dec_layers=2, num_queries=16, num_time_embeddings=64,
                kernel=3, dropout=0.0)
    ft_train = dict(epochs=20, batch_size=4, lr=1e-3, device=device, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_narrated_charades(data, {"train": uids[n_pre:n_pre + n_train], "test": uids[n_pre + n_train:]},
                                        tmp)
        store = FeatureStore(f"{tmp}/s.zarr")
        fs, ts = write_to_store(data, store)
        runner.train("laviti", store, fs, [n for n in data.narrations if n.video_uid in uids[:n_pre]], f"{tmp}/pre",
                     text_set=ts, head_overrides=head, train_overrides=dict(
                         epochs=30, batch_size=4, lr=2e-3, schedule="constant", device=device, progress=False))
        t0 = time.perf_counter()
        ft = runner.train("laviti-charades", store, fs, files["train"], f"{tmp}/ft", val_annotations=files["test"],
                          text_set=ts, init=f"{tmp}/pre", train_overrides=ft_train)
        ft_s = time.perf_counter() - t0
        scratch = runner.train("laviti-charades", store, fs, files["train"], f"{tmp}/scratch",
                               val_annotations=files["test"], text_set=ts, head_overrides=head,
                               train_overrides=ft_train)
        labels = label_matrix(load_charades_ego(files["test"]), 12)
    rng = np.random.default_rng(0)
    chance = float(np.mean([charades_map(rng.random(labels.shape), labels) for _ in range(200)]))
    return {"ch_train_videos": n_train, "ch_test_videos": n_test,
            "ch_finetune_chunks_per_s_incl_eval": round(ft_train["epochs"] * n_train / ft_s, 1),
            "ch zero-shot mAP": round(ft["zero_shot_mAP"], 3), "ch fine-tuned mAP": round(ft["mAP"], 3),
            "ch from-scratch mAP": round(scratch["mAP"], 3), "ch chance mAP": round(chance, 3)}


def run(quick: bool = False, device: str = "auto") -> dict:
    return {"head": "laviti", "quick": quick, **scale(quick, device), **zero_shot(quick, device),
            **charades_scale(quick, device), **charades(quick, device)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.device), indent=1))
