"""The demo step of VideoTranslate: pretrain on the demo narrations, caption held-out videos, rank CharadesEgo
classes zero-shot. The network is a tiny *randomly initialised* T5 and the tokenizer a word-level one built
from the demo narrations: no pretrained weights exist offline, and the step says so in its result."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

TINY = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4, dropout=0.0,
            num_frames=8, window_s=4.0)
SMALL = dict(d_model=128, d_kv=32, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4, dropout=0.1,
             num_frames=8, window_s=4.0)
NOTE = "random-init tiny T5 + word-level tokenizer from the demo narrations (no pretrained weights offline)"


def demo(ctx, runner) -> dict:
    from egoflow.datasets.ego4d import load_narrations
    from egoflow.evaluate.captions import caption_metrics, narration_references
    from egoflow.heads.translate.head import most_frequent_caption, write_narrations

    out = Path(ctx.out_dir)
    log.warning("translate demo: %s", NOTE)
    print(f"translate: {NOTE}", flush=True)
    narrs = load_narrations(ctx.narrations)
    uids = sorted({n.video_uid for n in narrs})
    n_val = max(1, len(uids) // 4)
    val_uids = set(uids[-n_val:])
    train_n = [n for n in narrs if n.video_uid not in val_uids]
    val_n = [n for n in narrs if n.video_uid in val_uids]
    val_path = write_narrations(val_n, out / "data" / "narration_val.json")
    tr = dict(epochs=4 if ctx.quick else 40, batch_size=16, lr=3e-3 if ctx.quick else 1e-3, seed=ctx.seed,
              device=ctx.device, progress=not ctx.quick)
    metrics = runner.train("translate", ctx.store, ctx.feature_set, train_n, out, val_annotations=val_path,
                    head_overrides=TINY if ctx.quick else SMALL, train_overrides=tr)
    refs = narration_references(val_n)
    base = caption_metrics(refs, most_frequent_caption(train_n, refs), meteor=False)
    metrics["baseline most-frequent BLEU-4"] = base["BLEU-4"]
    if ctx.charades_val is not None and ctx.charades_classes is not None:
        from egoflow.evaluate.benchmarks import evaluate_charades_files
        pred = runner.predict("translate-charades", out, ctx.store, ctx.charades_val, out / "charades_zeroshot.json",
                       feature_set=ctx.feature_set, classes=str(ctx.charades_classes))
        zs = evaluate_charades_files(ctx.charades_val, pred)
        metrics["zero-shot charades mAP"] = zs["mAP"]
    return {"benchmark": "captions", "metrics": metrics, "predictions": str(out / "predictions.json"),
            "gt": str(val_path), "note": NOTE}


def finetune_demo(name: str, ctx, runner) -> dict:
    """Demo step of ``translate-charades`` / ``translate-ek100``: a tiny random-init T5 fine-tuned from scratch on
    the demo's CharadesEgo split (the concepts as classes) or the EK-100 files the linear heads' demo derives
    from the MQ moments, scored by class-name ranking on the held-out split."""
    from egoflow.datasets.ego4d import load_nlq
    from egoflow.datasets.synthetic.linear import files_from_mq

    out = Path(ctx.out_dir)
    print(f"{name}: {NOTE}", flush=True)
    tr = dict(epochs=2 if ctx.quick else 6, batch_size=16, lr=3e-3, seed=ctx.seed, device=ctx.device,
              progress=not ctx.quick)
    if name == "translate-charades":
        train, val, opts, bench = ctx.charades_train, ctx.charades_val, {"classes": str(ctx.charades_classes)}, \
            "charades"
    else:
        questions = sorted({q.query for q in load_nlq(ctx.nlq_train)})[:4]
        files = files_from_mq(ctx.mq_train, ctx.mq_val, questions, out / "data")
        train, val, opts, bench = files["ek100_train"], files["ek100_val"], {}, "ek100-ar"
    metrics = runner.train(name, ctx.store, ctx.feature_set, train, out, val_annotations=val, head_overrides=TINY,
                           train_overrides=tr, **opts)
    return {"benchmark": bench, "metrics": metrics, "predictions": str(out / "predictions.json"), "gt": str(val),
            "note": NOTE}
