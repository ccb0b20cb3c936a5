"""EgoVLP (challenge-report features), the frozen-CLIP Ego4D default and LAVITI's inputs."""
from __future__ import annotations

from egoflow.heads.vslnet.head import DROPOUT_DIFFERS
from egoflow.recipes.spec import NOT_FOUND, Recipe, Setting, register

V1 = "showlab/EgoVLP@928406c"
EGO4D_DOCS = "EGO4D/docs@e8c7834"
EGOVLP = "Lin et al., Egocentric Video-Language Pretraining, NeurIPS 2022 (and its Ego4D challenge report)"


def _egovlp(name, head, target, commands):
    return register(Recipe(
        name=name, version=1, paper=EGOVLP, target=target, verbs=("extract", "encode-text", "train", "predict"),
        settings=(
            Setting("model", "Frozen-in-Time TimeSformer-B + DistilBERT, 256-d joint space",
                    "FrozenInTime SpaceTimeTransformer + distilbert-base-uncased, projection_dim 256",
                    f"{V1}:configs/eval/{head}.json", "egovlp-base"),
            Setting("frames per window F", "not stated", "4 (data_loader video_params.num_frames)",
                    f"{V1}:configs/eval/{head}.json", "4"),
            Setting("windows per second", "1.87 (README: dense features, fps=1.87)", "1.87",
                    f"{V1}:data_loader/Ego4D_{head.upper()}_dataset.py", "1.87"),
            Setting("frame indices", "not stated", "decord_start_end (the same rule as EgoVLPv2)",
                    f"{V1}:base/base_dataset.py", "start-end-decord"),
            Setting("pre-resize", "not stated", "videos at height 256 (ego4d_256)", f"{V1}:configs/eval/{head}.json",
                    "decoder: height 256"),
            Setting("resize / crop", "224", "Resize(256), CenterCrop(256), Resize(224)",
                    f"{V1}:data_loader/transforms.py", "crop256-224"),
            Setting("video feature", "256-d", "compute_video: vid_proj(video_model(x)), not normalised",
                    f"{V1}:run/test_{head}.py, model/model.py", "feature=dual-proj"),
            Setting("text side", "token features (NLQ)", "compute_text_tokens: txt_proj(last hidden states) "
                    "[1:n-1] (CLS/SEP dropped), 256-d" if head == "nlq" else "none",
                    f"{V1}:run/test_nlq.py" if head == "nlq" else NOT_FOUND,
                    "text_tokens=proj-inner (the same slice)" if head == "nlq" else "none"),
            Setting("precision", "not stated", "fp32 (no autocast in run/test_*.py)", f"{V1}:run/test_{head}.py",
                    "fp32")),
        encoder={"kind": "fused", "model": "egovlp-base", "frames": 4, "precision": "fp32",
                 "transform": "crop256-224", "pre_resize": 256, "frame_rule": "start-end-decord",
                 "window_rate": 1.87, "feature": "dual-proj",
                 **({"text_tokens": "proj-inner"} if head == "nlq" else {})},
        options={"fps": 7.48, "stride": 4}, head="vslnet" if head == "nlq" else "vsgn",
        checkpoint="egovlp.pth", commands=commands,
        differs=("the released egovlp.pth was not loaded here (no downloads): egovlp-base's architecture and "
                 "loader are proven at tiny size against showlab/EgoVLP@928406c (<= 6.6e-7, "
                 "tests/test_extract_fused_egovlp.py)",) + ((DROPOUT_DIFFERS,) if head == "nlq" else ()),
        needs={"encoder": "fused", "model": "egovlp-", "dim": 256,
               **({"text_tokens": True, "text_dim": 256} if head == "nlq" else {})}))


EGOVLP_NLQ = _egovlp(
    "egovlp-nlq", "nlq", "VSLNet + EgoVLP features, NLQ val R@1 IoU0.3 10.84, R@5 18.84; IoU0.5 6.81, 13.45 "
    "(showlab/EgoVLP README)",
    ("egoflow extract clips/ --store S --recipe egovlp-nlq --pretrained egovlp.pth",
     "egoflow encode-text nlq_train.json nlq_val.json --store S --recipe egovlp-nlq --pretrained egovlp.pth",
     "egoflow train vslnet --store S --feature-set F --text-set T --annotations nlq_train.json --out runs/nlq",
     "egoflow evaluate nlq --runs runs/nlq --out report/"))
EGOVLP_MQ = _egovlp(
    "egovlp-mq", "mq", "VSGN + EgoVLP features, MQ val R@1 IoU0.5 30.14, R@5 51.98, mAP 11.39 (showlab/EgoVLP README)",
    ("egoflow extract clips/ --store S --recipe egovlp-mq --pretrained egovlp.pth",
     "egoflow train vsgn --store S --feature-set F --annotations moments_train.json --out runs/mq",
     "egoflow evaluate mq --runs runs/mq --out report/"))

EGO4D_CLIP = register(Recipe(
    name="ego4d-clip-1.875fps", version=1, paper="Grauman et al., Ego4D, CVPR 2022 (feature rate of the "
    "episodic-memory baselines); egoflow's frozen-CLIP default",
    target="none: a rate-compatible frozen-CLIP feature set (the Ego4D baselines report SlowFast features)",
    verbs=("extract", "encode-text", "train", "predict"),
    settings=(
        Setting("features per second", "1.875", "30 fps canonical videos, window 32, stride 16 frames -> 1.875/s",
                f"{EGO4D_DOCS}:docs/data/features.md", "1.875 (one frame per 16/30 s)"),
        Setting("model", "SlowFast 8x8 R101 (Kinetics-400)", "SlowFast / Omnivore",
                f"{EGO4D_DOCS}:docs/data/features.md",
                "open_clip ViT-B-32 (frozen CLIP, egoflow's choice)"),
        Setting("frame sampling", "windows of 32 frames", "window [i, i+32), stride 16, last window backed up",
                f"{EGO4D_DOCS}:docs/data/features.md", "one frame at the centre of each 16-frame step (pts rule)"),
        Setting("precision", "not stated", NOT_FOUND, NOT_FOUND, "fp32")),
    encoder={"kind": "clip", "model": "ViT-B-32", "precision": "fp32"},
    options={"fps": 1.875}, checkpoint="openai",
    commands=("egoflow extract videos/ --store S --recipe ego4d-clip-1.875fps --pretrained openai",
              "egoflow encode-text nlq_train.json nlq_val.json --store S --recipe ego4d-clip-1.875fps "
              "--pretrained openai",
              "egoflow train vslnet --store S --feature-set clip-ViT-B-32-openai-1.875fps --text-set T "
              "--annotations nlq_train.json --val-annotations nlq_val.json --out runs/nlq",
              "egoflow evaluate nlq --runs runs/nlq --out report/"),
    differs=("CLIP frame features are not the SlowFast/Omnivore window features: the rate matches, the numbers "
             "are not the Ego4D baselines'",
             "the grid is Ego4D's: feature k of both starts at frame 16k (k / 1.875 s, the index Ego4D annotations "
             "use); egoflow's frame 16k + 8 lies inside Ego4D's window k (frames 16k .. 16k + 31, its last window "
             "back-padded to end with the video); egoflow has one feature more when the frame count n has n % 16 "
             "= 0 or > 8 (recorded from facebookresearch/Ego4d@a44f40b ego4d/features, "
             "tests/test_extract_reference.py)"), needs={"encoder": "open_clip"}))

LAVITI = register(Recipe(
    name="laviti", version=1, paper="Liu, Min, Valdez, Tripathi, Contrastive Language Video Time Pre-training, 2024",
    target=NOT_FOUND + " (no public code; see docs/heads_laviti.md for the paper's numbers we compare with)",
    verbs=("extract", "encode-text", "train", "predict"),
    settings=(
        Setting("frame rate", "6 fps (docs/heads_laviti.md)", "no public code", NOT_FOUND, "6"),
        Setting("model", "frozen CLIP image encoder", "no public code", NOT_FOUND, "open_clip ViT-B-32"),
        Setting("precision", "not stated", "no public code", NOT_FOUND, "fp32")),
    encoder={"kind": "clip", "model": "ViT-B-32", "precision": "fp32"},
    options={"fps": 6.0}, head="laviti", checkpoint="openai",
    commands=("egoflow extract videos/ --store S --recipe laviti --pretrained openai",
              "egoflow encode-text narration.json nlq_val.json --store S --recipe laviti --pretrained openai",
              "egoflow train laviti --store S --feature-set clip-ViT-B-32-openai-6fps --text-set T "
              "--annotations narration.json --val-annotations nlq_val.json --out runs/laviti",
              "egoflow predict laviti --run runs/laviti --store S --annotations nlq_val.json --out laviti_nlq.json",
              "egoflow evaluate nlq --pred laviti_nlq.json --gt nlq_val.json --out report/"),
    differs=("the CLIP variant of the paper is not restated in our copy; ViT-B-32 is egoflow's choice",
             "no loader-parity test: without public code there is no reference sampler to record"),
    needs={"encoder": "open_clip"}))

__all__ = ["EGO4D_CLIP", "EGOVLP_MQ", "EGOVLP_NLQ", "LAVITI"]
