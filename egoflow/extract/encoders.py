"""One encoder spec from the command line to the store.

    spec = EncoderSpec(kind="fused", model="egovlpv2-base", pretrained="EgoVLPv2.pth", frames=4, tokenizer="rb/")
    describe(spec)   # what names the feature set, without loading a model
    encoder = create(spec)   # the one factory (cached per process): ClipEncoder or FusedEncoder

The CLI builds the spec once; flows carry it as one parameter (a frozen dataclass: Prefect serialises it, and a
worker rebuilds the same encoder from it); recipes produce one.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from egoflow.errors import EgoflowUserError

KINDS = ("clip", "fused")
FUSED_BATCH_CAP = 8  # windows of F frames per forward pass: a fused batch of 64 windows is 1024 frames
DEFAULT_MODEL = {"clip": "ViT-B-32", "fused": "egovlpv2-base"}
DEFAULT_FRAMES = {"clip": 0, "fused": 16}


class EncoderSpecError(EgoflowUserError, ValueError):
    pass


@dataclass(frozen=True)
class EncoderSpec:
    kind: str = "clip"  # clip: frozen open_clip on frames | fused: EgoVLPv2-style backbone on windows
    model: str = ""  # open_clip architecture or fused registry name ("" -> the kind's default)
    pretrained: str = "none"  # open_clip tag, local checkpoint path, or none (random init, loudly)
    precision: str = "auto"  # auto | bf16 | fp32 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N (a worker resolves "auto" on its own machine)
    batch_size: int = 64  # frames (clip) or windows (fused, capped at FUSED_BATCH_CAP) per forward pass
    frames: int = -1  # frames per window (--frames): clip pools them, fused encodes them; 0 frame-level; -1 default
    tokenizer: str = ""  # fused EgoVLPv2: folder with RoBERTa vocab.json + merges.txt
    fusion_checkpoint: str = ""  # clip-fused: tuned fusion weights
    recipe: str = ""  # "name@version" of the recipe that set these values ("" none)
    # reference preprocessing (set by recipes; see egoflow.extract.reference) -- fused only
    frame_rule: str = ""  # a reference loader's frame rule ("" egoflow's pts-centre sampling)
    transform: str = ""  # a reference test transform ("" bicubic shorter side + centre crop)
    pre_resize: int = 0  # decoder resizes to this height first (the references' offline ffmpeg copy); 0 off
    window_rate: float = 0.0  # start-end-decord: windows per second (1.87 in the references)
    tail: str = ""  # a window past the last frame: "" padded by repeating it | "drop" (QFVS's drop_last)
    feature: str = ""  # stored tensor: "" dual projection L2-normalised | "dual-proj" projection, not normalised
    text_tokens: str = ""  # encode-text token features: "" none | "hidden" | "proj-inner" (FusedEncoder.encode_text)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EncoderSpecError(f"unknown encoder kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if not self.model:
            object.__setattr__(self, "model", DEFAULT_MODEL[self.kind])
        if self.frames < 0:
            object.__setattr__(self, "frames", DEFAULT_FRAMES[self.kind])
        if self.kind == "fused" and self.frames < 1:
            raise EncoderSpecError(f"the fused encoder takes windows of frames: frames per window must be >= 1, "
                                   f"got {self.frames}")
        if self.batch_size < 1:
            raise EncoderSpecError(f"batch size must be >= 1, got {self.batch_size}")
        if self.kind == "clip" and (self.tokenizer or self.fusion_checkpoint):
            raise EncoderSpecError("--tokenizer / --fusion-checkpoint belong to the fused encoder (--encoder fused)")
        if self.kind == "clip" and self.reference():
            raise EncoderSpecError(f"reference preprocessing {sorted(self.reference())} belongs to the fused encoder")
        if self.feature not in ("", "dual-proj"):
            raise EncoderSpecError(f"unknown feature {self.feature!r}: use '' (L2-normalised) or 'dual-proj'")

    def reference(self) -> dict:
        """The reference-preprocessing settings that differ from egoflow's defaults (fused encoder kwargs)."""
        keys = ("frame_rule", "transform", "pre_resize", "window_rate", "tail", "text_tokens")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}

    @property
    def fused(self) -> bool:
        return self.kind == "fused"

    def with_device(self, device: str) -> EncoderSpec:
        """The same spec on another device (a worker's own GPU)."""
        return replace(self, device=device)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> EncoderSpec:
        known = {f.name for f in fields(cls)}
        bad = sorted(set(data) - known)
        if bad:
            raise EncoderSpecError(f"unknown encoder setting(s) {bad}; known: {sorted(known)}")
        return cls(**data)


FROZEN_CLIP = EncoderSpec()  # the default: frozen open_clip ViT-B-32, random init, frame-level


def with_frames(encoder, cfg):
    """``cfg`` (an ``ExtractConfig``) with the window of ``encoder`` when it is an :class:`EncoderSpec`: its
    ``frames`` is the one frames-per-window setting (clip windows pool that many frames, fused windows encode them).
    An encoder object leaves ``cfg`` as it is."""
    return replace(cfg, window=encoder.frames) if isinstance(encoder, EncoderSpec) else cfg


def resolve(encoder, cfg):
    """(encoder object, cfg): an :class:`EncoderSpec` becomes its encoder (the one factory) and sets the window."""
    return (create(encoder) if isinstance(encoder, EncoderSpec) else encoder), with_frames(encoder, cfg)


def describe(spec: EncoderSpec) -> dict:
    """What names a feature set (kind, model, weights), without loading the model."""
    from egoflow.extract.clip import weights_description

    return {"encoder": spec.kind if spec.fused else "open_clip", "model": spec.model,
            **weights_description(spec.pretrained), **({"recipe": spec.recipe} if spec.recipe else {})}


def create(spec: EncoderSpec):
    """The one factory: a frozen open_clip encoder or the fused backbone, loaded once per process."""
    if spec.fused:
        from egoflow.extract.fused.encoder import create_fused_encoder

        return create_fused_encoder(spec.model, spec.pretrained, spec.tokenizer, spec.frames, spec.precision,
                                    spec.device, min(spec.batch_size, FUSED_BATCH_CAP),
                                    normalize=spec.feature != "dual-proj", fusion_checkpoint=spec.fusion_checkpoint,
                                    recipe=spec.recipe, **spec.reference())
    from egoflow.extract.clip import create_encoder

    return create_encoder(spec.model, spec.pretrained, spec.precision, spec.device, spec.batch_size,
                          recipe=spec.recipe)
