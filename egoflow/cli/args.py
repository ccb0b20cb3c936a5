"""Arguments shared by several verbs."""
from __future__ import annotations

import argparse


def add_storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help='fsspec options for an s3:// (etc.) store, e.g. \'{"endpoint_url": "http://host:9000"}\' '
                        "or @file.json; credentials come from the environment (docs/scale-out.md)")


def add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", default="clip", choices=["clip", "fused"],
                   help="clip: frozen open_clip frames; fused: EgoVLPv2-style fused backbone on windows")
    p.add_argument("--model", default=None, help="open_clip architecture (default ViT-B-32), or with --encoder "
                   "fused a fused model (default egovlpv2-base; clip-fused-<open_clip model>)")
    p.add_argument("--tokenizer", default="", help="fused: folder with RoBERTa vocab.json + merges.txt")
    p.add_argument("--num-frames", type=int, default=16, help="fused: frames per window F (default 16)")
    p.add_argument("--fusion-checkpoint", default="", help="clip-fused: tuned fusion weights")
    p.add_argument("--pretrained", default="none",
                   help="open_clip tag (e.g. laion2b_s34b_b79k), local checkpoint path, or none (random init)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    p.add_argument("--recipe", default=None, help="named paper/reference settings (`egoflow recipes`); an explicit "
                   "flag departs from one setting and says so")


def make_encoder(a):
    extras = dict(getattr(a, "encoder_extras", None) or {})  # a recipe's settings that have no flag (EncoderSpec names)
    if getattr(a, "encoder", "clip") == "fused":
        from egoflow.extract.fused.encoder import create_fused_encoder

        normalize = extras.pop("feature", "") != "dual-proj"
        return create_fused_encoder(a.model, a.pretrained, a.tokenizer, a.num_frames, a.precision, a.device,
                                    min(a.batch_size, 8), normalize=normalize, fusion_checkpoint=a.fusion_checkpoint,
                                    **extras)
    from egoflow.extract.clip import create_encoder

    return create_encoder(a.model, a.pretrained, a.precision, a.device, a.batch_size,
                          recipe=extras.get("recipe", ""))


def resolve_encoder_defaults(a) -> None:
    """--model / --fps defaults depend on --encoder: fused windows default to Ego4D's 1.875 features/s."""
    fused = getattr(a, "encoder", "clip") == "fused"
    if hasattr(a, "encoder") and getattr(a, "model", "") is None:  # verbs with encoder args (not search)
        a.model = "egovlpv2-base" if fused else "ViT-B-32"
    if getattr(a, "command", None) == "extract" and a.fps is None:
        a.fps = 1.875 * ((a.stride or a.window or a.num_frames) if fused else 1)
