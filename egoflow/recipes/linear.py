"""Linear-head recipes: the reference code's head and schedule for EgoTaskQA, OSCC, PNR and EK-100
(``egoflow train linear-* --recipe NAME``).

The values are the head's own record of each reference (egoflow.heads.linear.reference), shared with the tests
and docs/recipes.md. Every reference fine-tunes its backbone end to end; on frozen cached features these recipes
give the reference's head and schedule, not its numbers (``differs`` of each).
"""
from __future__ import annotations

from egoflow.heads.linear import reference as ref
from egoflow.recipes.heads import _head_recipe

FINE_TUNED = "the reference fine-tunes the whole backbone with this head (every parameter in the optimiser); " \
             "egoflow trains the head alone on frozen cached features"

EGOVLPV2_EGOTASKQA = _head_recipe(
    "egovlpv2-egotaskqa", "linear-egotaskqa", "EgoVLPv2 EgoTaskQA head (EgoTaskQA/main_end2end.py)",
    "the reference fine-tunes end to end: direct 46.26 / indirect 42.28 overall accuracy (EgoTaskQA/README.md); "
    "head-tuning on frozen fused features: none published",
    ref.EGOVLPV2_TASKQA_HEAD, ref.EGOVLPV2_TASKQA_TRAIN, ref.SOURCES["egotaskqa"],
    (FINE_TUNED,
     "needs a query-conditioned fused set holding every question (extract --encoder fused --queries *_qas.json); "
     "a plain set is refused (conditioned=true)",
     "the reference encodes each question's clip once (16 frames, one random frame in each of 16 equal parts, "
     "also at test); egoflow mean-pools the fused windows inside the interval (the same tensor when the interval "
     "is one window of 16 frames)",
     "questions are encoded as written (the reference lower-cases and strips them, 30 RoBERTa tokens at most)",
     "warm-up: egoflow's lr at warm-up step s is (s + 1) / W of the peak, transformers' s / W (one step apart); "
     f"indirect split: --lr {ref.EGOVLPV2_TASKQA_LR_INDIRECT:g}",
     "best epoch by validation accuracy (the reference keeps the epoch with the best test accuracy); fp32 (the "
     "reference trains with CUDA mixed precision)"),
    ("egoflow extract qa_videos/ --store S --encoder fused --model egovlpv2-base --pretrained EgoVLPv2.pth "
     "--tokenizer roberta-base/ --frames 16 --queries direct/train_qas.json --queries direct/val_qas.json "
     "--queries direct/test_qas.json",
     "egoflow train linear-egotaskqa --recipe egovlpv2-egotaskqa --store S --feature-set F --annotations "
     "direct/train_qas.json --val-annotations direct/val_qas.json --out runs/taskqa",
     "egoflow predict linear-egotaskqa --run runs/taskqa --store S --annotations direct/test_qas.json "
     "--out taskqa_test.json",
     "egoflow evaluate egotaskqa --pred taskqa_test.json --gt direct/test_qas.json --out report/"),
    needs={"encoder": "fused", "model": "egovlpv2-", "conditioned": True})

EGOVLP_OSCC = _head_recipe(
    "egovlp-oscc", "linear-oscc", "EgoVLP OSCC head (configs/ft/oscc.json)",
    "the reference fine-tunes end to end: OSCC accuracy 73.9 (EgoVLP README.md); with frozen features: none",
    ref.EGOVLP_OSCC_HEAD, ref.EGOVLP_OSCC_TRAIN, ref.SOURCES["oscc"],
    (FINE_TUNED,
     "the reference classifies the video [CLS] of 16 frames of the clip; egoflow the mean of the clip's steps",
     "best epoch by validation accuracy (the reference monitors validation loss, early stop after 10 epochs)",
     "the Ego4D hands-and-objects baseline (I3D ResNet-50, trained end to end) has no linear-head form"),
    ("egoflow train linear-oscc --recipe egovlp-oscc --store S --feature-set F --annotations "
     "fho_oscc-pnr_train.json --val-annotations fho_oscc-pnr_val.json --out runs/oscc",
     "egoflow evaluate oscc --pred runs/oscc/predictions.json --gt fho_oscc-pnr_val.json --out report/"))

EGOVLP_PNR = _head_recipe(
    "egovlp-pnr", "linear-pnr", "EgoVLP PNR head (configs/ft/pnr.json)",
    "the reference fine-tunes end to end: PNR error 0.622 s (EgoVLP README.md); with frozen features: none",
    ref.EGOVLP_PNR_HEAD, ref.EGOVLP_PNR_TRAIN, ref.SOURCES["pnr"],
    (FINE_TUNED,
     "the reference maps the clip's [CLS] to 16 scores, one per sampled frame position (Linear(768, 16)); "
     "egoflow scores every step with one shared layer and takes the argmax",
     "the Ego4D hands-and-objects baseline (I3D ResNet-50, trained end to end) has no linear-head form"),
    ("egoflow train linear-pnr --recipe egovlp-pnr --store S --feature-set F --annotations "
     "fho_oscc-pnr_train.json --val-annotations fho_oscc-pnr_val.json --out runs/pnr",
     "egoflow evaluate pnr --pred runs/pnr/predictions.json --gt fho_oscc-pnr_val.json --out report/"))

EPIC_TSN_EK100 = _head_recipe(
    "epic-tsn-ek100", "linear-ek100", "EPIC-KITCHENS-100 action recognition baseline TSN (C1, configs/tsn_rgb.yaml)",
    "the reference trains ResNet-50 TSN end to end; with frozen features: none",
    ref.TSN_EK100_HEAD, ref.TSN_EK100_TRAIN, ref.SOURCES["ek100"],
    (FINE_TUNED,
     "TSN averages per-segment logits of 8 (test: 25) sampled segments and drops out each segment's feature; "
     "egoflow drops out and classifies the mean of the segment's steps (the same logits without dropout)",
     "one layer per output (verbs, nouns) where TSN splits one Linear(2048, 97 + 300); weights start at "
     "PyTorch's default init (TSN: normal std 0.001, bias 0)"),
    ("egoflow train linear-ek100 --recipe epic-tsn-ek100 --store S --feature-set F --annotations "
     "EPIC_100_train.csv --val-annotations EPIC_100_validation.csv --out runs/ek100",
     "egoflow evaluate ek100-ar --pred runs/ek100/predictions.json --gt EPIC_100_validation.csv --out report/"))

__all__ = ["EGOVLPV2_EGOTASKQA", "EGOVLP_OSCC", "EGOVLP_PNR", "EPIC_TSN_EK100"]
