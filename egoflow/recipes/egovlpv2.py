"""EgoVLPv2 recipes (Pramanick et al., ICCV 2023), read from facebookresearch/EgoVLPv2@550c059.

Shared settings first, then one recipe per benchmark. Numbers in ``target`` are the ones the reference README
reports for the released checkpoints (the paper's tables give the same values)."""
from __future__ import annotations

from egoflow.heads.vsgn import head as vsgn_head
from egoflow.heads.vslnet.head import DROPOUT_DIFFERS
from egoflow.recipes.spec import NOT_FOUND, Recipe, Setting, register

V2 = "facebookresearch/EgoVLPv2@550c059"
PAPER = "Pramanick et al., EgoVLPv2: Egocentric Video-Language Pre-training with Fusion in the Backbone, ICCV 2023"

MODEL = Setting("model", "TimeSformer-B/16 + RoBERTa-B, fusion in the top 6 layers",
                "FrozenInTime SpaceTimeTransformer base_patch16_224 + roberta-base",
                f"{V2}:EgoVLPv2/configs/eval/egomcq.json", "egovlpv2-base")
PRE_RESIZE = Setting("pre-resize", "not stated", "offline ffmpeg scale=trunc(oh*a/2)*2:256 (height 256)",
                     f"{V2}:EgoVLPv2/utils/video_resize.py",
                     "decoder: libswscale bicubic to height 256 in YUV 4:2:0 (no re-encode)")
TRANSFORM = Setting("resize / crop", "224 x 224 input",
                    "Resize(256), CenterCrop(256), Resize(224); bilinear, no antialias (torchvision 0.14.1)",
                    f"{V2}:EgoVLPv2/data_loader/transforms.py + requirements.txt", "crop256-224 (same ops)")
NORM = Setting("normalisation", "not stated", "ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)",
               f"{V2}:EgoVLPv2/data_loader/transforms.py", "the same")
FP32 = Setting("precision", "not stated", "fp32 (no autocast in the evaluation scripts read)",
               f"{V2}:EgoVLPv2/test_mq.py, EgoNLQ/main.py", "fp32")
SMALLPROJ_MODEL = Setting(
    "model", MODEL.paper, "FrozenInTime of model_epic_charades.py: the same towers and fusion, projection heads "
    "768 -> 256 (vid_proj = Linear; txt_proj = ReLU, Linear), the smallproj checkpoints' shape",
    f"{V2}:EgoVLPv2/model/model_epic_charades.py, EgoVLPv2/README.md", "egovlpv2-base-smallproj")
SMALLPROJ_DIFFERS = ("the released smallproj files were not loaded here (no downloads): their key names and shapes "
                     "load into egovlpv2-base-smallproj at tiny size (egovlpv2-tiny-smallproj, "
                     "tests/test_extract_fused_checkpoint.py); a 4096-d EgoVLPv2.pth is refused in one line")
SECONDS = Setting("seconds -> frames", "not stated", "int(t * 30): every video assumed 30 fps",
                  f"{V2}:EgoVLPv2/base/base_dataset.py", "the same (Ego4D canonical videos are 30 fps)")
REF = {"transform": "crop256-224", "pre_resize": 256}
VSGN_REFERENCE_HEAD, VSGN_REFERENCE_TRAIN = vsgn_head.REFERENCE_HEAD, vsgn_head.REFERENCE_TRAIN


def _nlq_mq(name, frames, feature, target, extra, enc, opts, head, overrides, train, commands, differs,
            version=1, train_config=None, needs=None):
    cfg_file = "EgoNLQ/configs/nlq.json" if frames == 4 else "EgoVLPv2/configs/eval/mq.json"
    rate = Setting("windows per second", "not stated", "1.87 (fps = 1.87; dur * 1.87 * F frames per clip)",
                   f"{V2}:EgoNLQ/utils/data_gen.py", "1.87")
    rule = Setting("frame indices", "not stated",
                   "decord_start_end: int(dur*1.87*F + 1) frames, middle of equal parts of [start*30, end*30); "
                   "windows of F, tail dropped", f"{V2}:EgoVLPv2/base/base_dataset.py",
                   "start-end-decord (same rule; the input file is the clip)")
    return register(Recipe(
        name=name, version=version, paper=PAPER, target=target, verbs=("extract", "encode-text", "train", "predict"),
        settings=(MODEL, Setting("frames per window F", "4 (NLQ head-tuning)" if frames == 4 else "not stated",
                                 str(frames), f"{V2}:{cfg_file}", str(frames)),
                  rate, rule, SECONDS, PRE_RESIZE, TRANSFORM, NORM, FP32, feature, *extra),
        encoder={"kind": "fused", "model": "egovlpv2-base", "frames": frames, "precision": "fp32", **REF,
                 "frame_rule": "start-end-decord", "window_rate": 1.87, **enc},
        options={"fps": round(1.87 * frames, 4), "stride": frames, **opts},
        head=head, head_overrides=overrides, train=train, train_config=train_config or {}, checkpoint="EgoVLPv2.pth",
        commands=commands, differs=differs, needs=needs or {}))


FUSED_V2 = {"encoder": "fused", "model": "egovlpv2-"}  # features of the fused EgoVLPv2 backbone
NLQ = _nlq_mq(
    "egovlpv2-nlq", 4,
    Setting("video feature", "query-conditioned fused video CLS", "fused forward: norm(video tokens)[:, 0], 768-d, "
            "not normalised", f"{V2}:EgoNLQ/model/model.py (forward), EgoNLQ/main.py", "fused CLS 768-d (--queries)"),
    "EgoVLPv2 + VSLNet, NLQ val R@1 IoU0.3 12.95, R@5 23.80, IoU0.5 R@1 7.91, R@5 16.11 (EgoNLQ/README.md)",
    (Setting("text side", "token sequence", "compute_text_tokens(is_proj=False): RoBERTa last hidden states "
             "[1, L, 768], <s> and </s> kept, no max length", f"{V2}:EgoNLQ/main.py, EgoNLQ/model/model.py",
             "text_tokens=hidden: the same tensor into the text set's tokens"),
     Setting("head", "VSLNet", "max_pos_len 256, batch 32, lr 0.001, 50 epochs", f"{V2}:EgoNLQ/README.md",
             "vslnet: max_pos_len 256, video_dim 768, text_dim 768, conditioned; --batch-size 32 --lr 0.001 "
             "--epochs 50"),
     Setting("head layers, optimiser", "not stated", "the Ego4D baseline's VSLNet layers (model/layers.py, the "
             "same code), transformers AdamW with no decay on biases/LayerNorms, linear schedule, no warm-up",
             f"{V2}:EgoNLQ/model/{{layers,VSLNet}}.py, EgoNLQ/options.py",
             "vslnet without egoflow's options (mask_conv_padding off, pos_init_std 1.0); adamw-hf, "
             "no_decay_norm_bias, linear")),
    {"text_tokens": "hidden"}, {}, "vslnet",
    {"max_pos_len": 256, "video_dim": 768, "text_dim": 768, "conditioned": True, "predictor": "transformer",
     "mask_conv_padding": False, "pos_init_std": 1.0},
    {"epochs": 50, "lr": 0.001, "batch_size": 32},
    ("egoflow extract clips/ --store S --recipe egovlpv2-nlq --pretrained EgoVLPv2.pth --tokenizer roberta-base/ "
     "--queries nlq_val.json",
     "egoflow encode-text nlq_train.json nlq_val.json --store S --recipe egovlpv2-nlq --pretrained EgoVLPv2.pth "
     "--tokenizer roberta-base/",
     "egoflow train vslnet --recipe egovlpv2-nlq --store S --feature-set F --text-set T --annotations "
     "nlq_train.json --val-annotations nlq_val.json --out runs/nlq",
     "egoflow predict vslnet --run runs/nlq --store S --annotations nlq_val.json --out nlq_pred.json",
     "egoflow evaluate nlq --pred nlq_pred.json --gt nlq_val.json --out report/"),
    ("the reference trains on frames of windows it extracts per (clip, query) in one pass; egoflow stores "
     "the same fused features per (clip, query) and trains from the store",
     "inputs must be the Ego4D clip files: the reference's windows start at the clip start", DROPOUT_DIFFERS),
    version=2, train_config={"optimizer": "adamw-hf", "no_decay_norm_bias": True, "schedule": "linear",
                             "warmup_steps": 0, "weight_decay": 0.01, "grad_clip": 1.0},
    needs={**FUSED_V2, "dim": 768, "conditioned": True, "text_tokens": True, "text_dim": 768})

MQ = _nlq_mq(
    "egovlpv2-mq", 16,
    Setting("video feature", "dual video embedding", "compute_video: vid_proj(video_model(x)), 4096-d, NOT "
            "L2-normalised", f"{V2}:EgoVLPv2/test_mq.py, EgoVLPv2/model/model.py", "feature=dual-proj (4096-d)"),
    "EgoVLPv2 + VSGN, MQ val mAP avg 12.23 (IoU 0.1/0.3/0.5: 17.58/11.92/6.90) (EgoMQ/README.md)",
    (Setting("checkpoint", "EgoVLPv2", "a pretraining checkpoint (checkpoint-epoch10.pth, F=4 temporal "
             "embedding, interpolated to 16)", f"{V2}:EgoVLPv2/configs/eval/mq.json, EgoVLPv2/model/model.py",
             "--pretrained (bilinear temporal-embedding inflation, as the reference)"),),
    {"feature": "dual-proj"}, {}, "vsgn", {**VSGN_REFERENCE_HEAD, "video_dim": 4096}, {"epochs": 50},
    ("egoflow extract clips/ --store S --recipe egovlpv2-mq --pretrained EgoVLPv2.pth",
     "egoflow train vsgn --recipe egovlpv2-mq --store S --feature-set F --annotations moments_train.json "
     "--val-annotations moments_val.json --out runs/mq",
     "egoflow predict vsgn --run runs/mq --store S --annotations moments_val.json --out mq_pred.json",
     "egoflow evaluate mq --pred mq_pred.json --gt moments_val.json --out report/"),
    ("VSGN is the Ego4D MQ code (EgoMQ/Models: the same files with licence headers), with its options: "
     "vsgn.head.REFERENCE_HEAD / REFERENCE_TRAIN",
     "the reference grid-searches batch, lr, StepLR step and gamma (144 runs) and keeps the best val mAP: "
     "egoflow.heads.grid.grid_search with vsgn.head.EGOVLPV2_GRID; a single train run uses egoflow's defaults "
     "for those four",),
    version=2, train_config=dict(VSGN_REFERENCE_TRAIN), needs={**FUSED_V2, "dim": 4096})

EGOMCQ = register(Recipe(
    name="egovlpv2-egomcq", version=1, paper=PAPER,
    target="EgoMCQ inter-video 91.0 %, intra-video 60.9 % (EgoVLPv2/README.md)", verbs=("predict",),
    settings=(MODEL, Setting("frames per clip", "16", "16", f"{V2}:EgoVLPv2/configs/eval/egomcq.json", "16"),
              Setting("frame indices", "not stated", "cv2_egoclip 'uniform': middle of 16 equal parts of "
                      "[int(s*30), int(e*30)), read at index-1 (cv2 seek), 600 s chunk files, short clips "
                      "repeat their last frame", f"{V2}:EgoVLPv2/base/base_dataset.py", "egoclip-cv2 (same)"),
              SECONDS, PRE_RESIZE, TRANSFORM, NORM, FP32,
              Setting("score", "ensemble of dual and fusion (VTM)", NOT_FOUND, NOT_FOUND, "--score ensemble")),
    encoder={"kind": "fused", "model": "egovlpv2-base", "frames": 16, "precision": "fp32", **REF,
             "frame_rule": "egoclip-cv2"},
    options={"score": "ensemble"}, head="egomcq", checkpoint="EgoVLPv2.pth",
    commands=("egoflow predict egomcq --recipe egovlpv2-egomcq --annotations egomcq.json --videos ego4d_videos/ "
              "--pretrained EgoVLPv2.pth --tokenizer roberta-base/ --out egomcq_pred.json",
              "egoflow evaluate egomcq --pred egomcq_pred.json --gt egomcq.json --out report/"),
    differs=("the reference reads 600 s chunk files re-encoded offline; egoflow reads the whole video and maps "
             "chunk-local indices back (a chunk's length is taken as 18000 frames)",)))

EK100 = register(Recipe(
    name="egovlpv2-ek100-mir", version=2, paper=PAPER,
    target="EK-100 MIR zero-shot mAP 26.7, nDCG 29.1 (EgoVLPv2/README.md)", verbs=("predict",),
    settings=(SMALLPROJ_MODEL, Setting("frames per clip", "16", "16", f"{V2}:EgoVLPv2/configs/eval/epic.json", "16"),
              Setting("frame indices", "not stated", "the video's own fps: round(fps*start)..ceil(fps*end), "
                      "16 segments, middle of each (decord, exact index)",
                      f"{V2}:EgoVLPv2/data_loader/EpicKitchens_MIR_dataset.py", "epic-decord (same)"),
              Setting("pre-resize", "not stated", "videos at height 256 (video_ht256px)",
                      f"{V2}:EgoVLPv2/configs/eval/epic.json", "decoder: height 256"),
              Setting("resize / crop", "224", "Resize(224), CenterCrop(224) on 0..255 values, mean/std x 255",
                      f"{V2}:EgoVLPv2/data_loader/EpicKitchens_MIR_dataset.py", "short224-crop224 (same)"),
              FP32, Setting("checkpoint", "EgoVLPv2", "EgoVLPv2_smallproj.pth",
                            f"{V2}:EgoVLPv2/configs/eval/epic.json",
                            "--pretrained EgoVLPv2_smallproj.pth (256-d projection)"),
              Setting("score", "dual", NOT_FOUND, NOT_FOUND, "--score dual")),
    encoder={"kind": "fused", "model": "egovlpv2-base-smallproj", "frames": 16, "precision": "fp32",
             "transform": "short224-crop224", "pre_resize": 256, "frame_rule": "epic-decord"},
    options={"score": "dual"}, head="ek100-mir", checkpoint="EgoVLPv2_smallproj.pth",
    commands=("egoflow predict ek100-mir --recipe egovlpv2-ek100-mir --annotations epic-kitchens-100-annotations/"
              "retrieval_annotations --videos EK100/ --pretrained EgoVLPv2_smallproj.pth --tokenizer roberta-base/ "
              "--out ek100_sim.pkl",
              "egoflow evaluate ek100-mir --pred ek100_sim.pkl --gt epic-kitchens-100-annotations/"
              "retrieval_annotations --out report/"),
    differs=(SMALLPROJ_DIFFERS,)))

CHARADES = register(Recipe(
    name="egovlpv2-charades", version=2, paper=PAPER,
    target="CharadesEgo zero-shot mAP 26.2 (EgoVLPv2/README.md)", verbs=("predict",),
    settings=(SMALLPROJ_MODEL,
              Setting("frames per video", "32", "32", f"{V2}:EgoVLPv2/configs/eval/charades.json", "32"),
              Setting("frame indices", "not stated", "cv2_charades 'uniform' over the whole video: middle of 32 "
                      "equal parts, read at index-1", f"{V2}:EgoVLPv2/base/base_dataset.py", "charades-cv2 (same)"),
              Setting("pre-resize", "not stated", "none: CharadesEgo_v1_480 originals",
                      f"{V2}:EgoVLPv2/configs/eval/charades.json", "none"),
              TRANSFORM, NORM, FP32,
              Setting("checkpoint", "EgoVLPv2", "EgoVLPv2_smallproj_epoch1.pth (zero-shot)",
                      f"{V2}:EgoVLPv2/README.md", "--pretrained EgoVLPv2_smallproj_epoch1.pth")),
    encoder={"kind": "fused", "model": "egovlpv2-base-smallproj", "frames": 32, "precision": "fp32",
             "transform": "crop256-224", "frame_rule": "charades-cv2"},
    options={}, head="charades", checkpoint="EgoVLPv2_smallproj_epoch1.pth",
    commands=("egoflow predict charades --recipe egovlpv2-charades --encoder fused --videos CharadesEgo_v1_480/ "
              "--annotations CharadesEgo_v1_test_only1st.csv --pretrained EgoVLPv2_smallproj_epoch1.pth "
              "--tokenizer roberta-base/ "
              "--out charades_scores.txt",
              "egoflow evaluate charades --pred charades_scores.txt --gt CharadesEgo_v1_test_only1st.csv "
              "--out report/"),
    differs=(SMALLPROJ_DIFFERS,)))

QFVS = register(Recipe(
    name="egovlpv2-qfvs", version=2, paper=PAPER,
    target="QFVS average F1 52.08 (videos 1-4: 53.30 / 54.13 / 62.64 / 38.25) (QFVS/README.md)",
    verbs=("extract", "train", "predict"),
    settings=(MODEL, Setting("frames per window", "5", "5 consecutive extracted images (batch 5, drop_last)",
                             f"{V2}:QFVS/extract_features.py", "5; tail=drop (a last window short of 5 is dropped)"),
              Setting("frame rate", "not stated", "frames pre-extracted with moviepy; rate " + NOT_FOUND,
                      f"{V2}:QFVS/extract_features.py", "1 fps (one window per 5 s shot)"),
              Setting("resize / crop", "not stated", "RandomResizedCrop(224, bicubic) even when extracting "
                      "(random)", f"{V2}:QFVS/extract_features.py",
                      "shorter side 224 (bicubic) + centre crop 224: the reference's crop fixed at the centre "
                      "square (a random crop cannot be matched)"),
              NORM, FP32),
    encoder={"kind": "fused", "model": "egovlpv2-base", "frames": 5, "precision": "fp32", "tail": "drop"},
    options={"fps": 1.0, "stride": 5}, head="summarizer", checkpoint="EgoVLPv2.pth",
    commands=("egoflow extract UTE_videos/ --store S --recipe egovlpv2-qfvs --pretrained EgoVLPv2.pth "
              "--tokenizer roberta-base/",
              "egoflow train summarizer --store S --feature-set F --annotations qfvs/ --out runs/qfvs",
              "egoflow evaluate qfvs --runs runs/qfvs --out report/"),
    differs=("the reference crops at random when extracting (RandomResizedCrop) and reads JPGs made with moviepy "
             "at a rate its code does not give; egoflow decodes at 1 fps and crops the centre square: with the "
             "reference's crop fixed there, the same frames make the same windows and the pixels differ by "
             "0.024 (normalised units, JPEG q95 and PIL's bicubic; tests/test_extract_reference.py)",),
    needs=dict(FUSED_V2)))

__all__ = ["CHARADES", "EGOMCQ", "EK100", "MQ", "NLQ", "QFVS"]
