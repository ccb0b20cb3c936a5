"""Arguments shared by several verbs; the encoder spec and extraction options are built here, once."""
from __future__ import annotations

import argparse
import sys

from egoflow.extract.encoders import EncoderSpec


def add_storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help='fsspec options for an s3:// (etc.) store, e.g. \'{"endpoint_url": "http://host:9000"}\' '
                        "or @file.json; credentials come from the environment (docs/scale-out.md)")


class _Frames(argparse.Action):
    """``--frames N``; ``--window`` (clip) and ``--num-frames`` (fused) are its old spellings (a note says so)."""

    def __call__(self, parser, namespace, values, option_string=None):
        before = getattr(namespace, "_frames_flag", None)
        if before and getattr(namespace, self.dest) != values:
            parser.error(f"{before} {getattr(namespace, self.dest)} and {option_string} {values} both set the frames "
                         "per window: give one --frames")
        if option_string != "--frames":
            print(f"note: {option_string} is now --frames (frames per window, clip and fused alike)", file=sys.stderr)
        namespace._frames_flag = option_string
        setattr(namespace, self.dest, values)


def add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", default="clip", choices=["clip", "fused"],
                   help="clip: frozen open_clip frames; fused: EgoVLPv2-style fused backbone on windows")
    p.add_argument("--model", default=None, help="open_clip architecture (default ViT-B-32), or with --encoder "
                   "fused a fused model (default egovlpv2-base; clip-fused-<open_clip model>)")
    p.add_argument("--tokenizer", default="", help="fused: folder with RoBERTa vocab.json + merges.txt")
    p.add_argument("--frames", "--window", "--num-frames", dest="frames", type=int, default=-1, action=_Frames,
                   metavar="N", help="frames per window: clip mean-pools N frame features per window (default 0: "
                   "frame-level); fused encodes windows of N frames (default 16). --window / --num-frames: "
                   "old spellings")
    p.add_argument("--fusion-checkpoint", default="", help="clip-fused: tuned fusion weights")
    p.add_argument("--pretrained", default="none",
                   help="open_clip tag (e.g. laion2b_s34b_b79k), local checkpoint path, or none (random init)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=64,
                   help="frames (clip) or windows (fused, at most 8) per forward pass")
    p.add_argument("--recipe", default=None, help="named paper/reference settings (`egoflow recipes`); an explicit "
                   "flag departs from one setting and says so")


def spec_from_args(a) -> EncoderSpec:
    """The one :class:`EncoderSpec` of a verb's encoder arguments (kind defaults: model, frames per window), with
    the reference preprocessing of ``--recipe`` (``args.encoder_extras``)."""
    extras = getattr(a, "encoder_extras", None) or {}  # a recipe's settings that have no flag (egoflow.recipes)
    return EncoderSpec(kind=a.encoder, model=a.model or "", pretrained=a.pretrained, precision=a.precision,
                       device=a.device, batch_size=a.batch_size, frames=a.frames, tokenizer=a.tokenizer,
                       fusion_checkpoint=a.fusion_checkpoint, **extras)


def options_from_args(a, spec: EncoderSpec):
    """The extraction options of ``egoflow extract``; fps defaults to Ego4D's 1.875 features/s (fused: windows
    of ``spec.frames`` frames every ``--stride``, so 1.875 x stride sampled frames/s). The window is not here:
    it is ``spec.frames`` (``pipeline.with_frames``)."""
    from egoflow.extract.pipeline import ExtractConfig

    fps = a.fps if a.fps is not None else 1.875 * ((a.stride or spec.frames) if spec.fused else 1)
    return ExtractConfig(fps=fps, stride=a.stride, backend=a.backend, force=a.force,
                         decode=getattr(a, "decode", "sparse"))
