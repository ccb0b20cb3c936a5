"""What the reference code of each linear head's benchmark trains, in the head's own terms (Config / TrainConfig
fields), read from the public repositories named in ``SOURCES``. The recipes (egoflow.recipes.linear), their tests
and docs/recipes.md read these dicts, so they cannot drift apart.

Every reference below fine-tunes its whole backbone; the linear heads train on frozen cached features, so these
are the reference's *head* and schedule on egoflow's features, not a reproduction of its numbers (each recipe's
``differs`` says what is left out).
"""
from __future__ import annotations

V2 = "facebookresearch/EgoVLPv2@550c059"
EGOVLP = "showlab/EgoVLP@928406c"
C1 = "epic-kitchens/C1-Action-Recognition-TSN-TRN-TSM@731db0d"

# EgoVLPv2 EgoTaskQA (EgoTaskQA/model/video_qa_model_linear_end2end.py, main_end2end.py, README.md): the fused
# video [CLS] of 16 frames of the question's clip, given the question, -> Linear(768, A) -> ReLU -> Dropout(0.2)
# -> Linear(A, A), A = answers in answer_set.txt; cross-entropy; torch AdamW (weight decay 0.01) over every
# parameter, cosine schedule after a linear warm-up over 10% of the steps; 36 epochs; 8 GPUs x 8 clips; lr 2e-4
# (direct split) or 1e-4 (indirect); no gradient clipping; raw (not normalised) features.
EGOVLPV2_TASKQA_HEAD = {"conditioned": True, "hidden": -1, "hidden_dropout": 0.2, "dropout": 0.0,
                        "normalize": False}
EGOVLPV2_TASKQA_TRAIN = {"epochs": 36, "lr": 2e-4, "batch_size": 64, "optimizer": "adamw", "weight_decay": 0.01,
                         "schedule": "cosine", "warmup_fraction": 0.1, "grad_clip": 0.0}
EGOVLPV2_TASKQA_LR_INDIRECT = 1e-4  # README.md: the indirect split's peak lr

# EgoVLP OSCC (configs/ft/oscc.json, model/model.py 'minimal' projection, trainer/trainer_oscc.py): the video
# [CLS] of 16 frames of the 8 s clip -> Linear(768, 2); cross-entropy; transformers' AdamW (weight decay 0) at a
# constant 3e-5; 100 epochs; 8 GPUs x 4 clips; no clipping.
EGOVLP_OSCC_HEAD = {"normalize": False, "dropout": 0.0, "hidden": 0}
EGOVLP_OSCC_TRAIN = {"epochs": 100, "lr": 3e-5, "batch_size": 32, "optimizer": "adamw-hf", "weight_decay": 0.0,
                     "schedule": "constant", "grad_clip": 0.0}

# EgoVLP PNR (configs/ft/pnr.json, trainer/trainer_pnr.py): 16 frames of the clip -> Linear(768, 16), one score
# per frame position, cross-entropy against the keyframe position on state-change clips only; optimiser as OSCC;
# 10 epochs.
EGOVLP_PNR_HEAD = {"normalize": False, "dropout": 0.0, "hidden": 0}
EGOVLP_PNR_TRAIN = {"epochs": 10, "lr": 3e-5, "batch_size": 32, "optimizer": "adamw-hf", "weight_decay": 0.0,
                    "schedule": "constant", "grad_clip": 0.0}

# EPIC-KITCHENS-100 C1 TSN (configs/tsn_rgb.yaml, src/models/tsn.py): ResNet-50 features of 8 segments (25 at
# test), Dropout(0.7) -> Linear(2048, verbs + nouns) per segment, averaged; SGD momentum 0.9, weight decay 5e-4
# (none on biases, whose lr is doubled), lr 0.01 x 0.1 at epochs 20 and 40, 80 epochs, batch 128, clip 20.
TSN_EK100_HEAD = {"normalize": False, "dropout": 0.7, "hidden": 0}
TSN_EK100_TRAIN = {"epochs": 80, "lr": 0.01, "batch_size": 128, "optimizer": "sgd", "weight_decay": 5e-4,
                   "no_decay_norm_bias": True, "bias_lr_scale": 2.0, "schedule": "step", "step_milestones": (20, 40),
                   "step_gamma": 0.1, "grad_clip": 20.0}

SOURCES = {
    "egotaskqa": f"{V2}:EgoTaskQA/{{model/video_qa_model_linear_end2end.py,main_end2end.py,README.md}}",
    "oscc": f"{EGOVLP}:{{configs/ft/oscc.json,model/model.py,trainer/trainer_oscc.py}}",
    "pnr": f"{EGOVLP}:{{configs/ft/pnr.json,model/model.py,trainer/trainer_pnr.py}}",
    "ek100": f"{C1}:{{configs/tsn_rgb.yaml,src/models/tsn.py}}",
}
