"""Configurations of the fused video-text backbone and their registry (open_clip style: list_* / create_*).

``egovlpv2-base`` is the released EgoVLPv2 model: TimeSformer-B/16 at 224 px (divided space-time attention,
frozen-in-time style) + RoBERTa-base, cross-attention fusion in the top 6 layers of both towers, 3-layer
"minimal" projection heads into a 4096-d joint space, VTM (video-text matching) and MLM heads.
``egovlpv2-base-smallproj`` is the same backbone with the 256-d one-layer heads of the smallproj checkpoints
(EgoVLPv2's EK-100 MIR and CharadesEgo zero-shot numbers).
``egovlpv2-tiny`` has the same structure at a size that runs in milliseconds on a CPU (tests, demo).
``egovlp-base`` is the released EgoVLP model (Ego4D challenge report features): the same divided space-time
ViT-B/16 video tower, DistilBERT-base-uncased text, 256-d linear projections, no fusion (a dual encoder);
``egovlp-tiny`` is its test size. See :class:`EgoVLPConfig` and :mod:`egoflow.extract.fused.egovlp`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


class FusedModelError(ValueError):
    """A bad model name, checkpoint, tokenizer folder or input shape (one line, names the file/key)."""


@dataclass(frozen=True)
class FusedConfig:
    name: str = "egovlpv2-base"  # registry name (goes into feature-set names)
    image_size: int = 224  # input frames are image_size x image_size
    patch_size: int = 16  # ViT patch size
    num_frames: int = 16  # F: frames per window (4 in pretraining, 16 for downstream features)
    width: int = 768  # video transformer width
    depth: int = 12  # video transformer blocks
    heads: int = 12  # video attention heads
    mlp_ratio: float = 4.0  # video MLP hidden = width * mlp_ratio
    text_width: int = 768  # RoBERTa hidden size
    text_depth: int = 12  # RoBERTa layers (must equal depth: layer i of both towers fuses together)
    text_heads: int = 12  # RoBERTa attention heads
    text_mlp: int = 3072  # RoBERTa intermediate size
    vocab_size: int = 50265  # RoBERTa BPE vocabulary
    max_positions: int = 514  # RoBERTa position embeddings (pad id + 1 offset included, as roberta-base)
    type_vocab_size: int = 1  # RoBERTa token types (roberta-base has 1)
    text_ln_eps: float = 1e-5  # RoBERTa LayerNorm eps (roberta-base)
    pad_id: int = 1  # RoBERTa <pad>
    context_length: int = 32  # tokens per string (EgoVLPv2 pads/truncates narrations this way at inference)
    fused_layers: int = 6  # M: top layers of both towers with gated cross-attention
    proj_dim: int = 4096  # joint space of the dual (EgoNCE) embeddings
    projection: str = "minimal"  # minimal: 3-layer heads (EgoVLPv2.pth) | small: one Linear each (smallproj files)
    mlm_head: bool = True  # keep the MLM head (fusion tuning; the released checkpoint has it)
    mean: tuple = (0.485, 0.456, 0.406)  # ImageNet normalisation, as EgoVLPv2's transforms
    std: tuple = (0.229, 0.224, 0.225)

    def __post_init__(self):
        if self.text_depth != self.depth:
            raise FusedModelError(f"{self.name}: text_depth {self.text_depth} != depth {self.depth}")
        if not 0 <= self.fused_layers <= self.depth:
            raise FusedModelError(f"{self.name}: fused_layers {self.fused_layers} not in [0, {self.depth}]")
        if self.image_size % self.patch_size:
            raise FusedModelError(f"{self.name}: image_size {self.image_size} not a multiple of {self.patch_size}")
        if self.projection not in PROJECTIONS:
            raise FusedModelError(f"{self.name}: projection {self.projection!r} is not one of {', '.join(PROJECTIONS)}")

    @property
    def patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


PROJECTIONS = ("minimal", "small")


@dataclass(frozen=True)
class EgoVLPConfig:
    name: str = "egovlp-base"  # registry name (goes into feature-set names)
    image_size: int = 224  # input frames are image_size x image_size
    patch_size: int = 16  # ViT patch size
    num_frames: int = 16  # rows of the temporal embedding = most frames per window (the released file has 16)
    width: int = 768  # video transformer width
    depth: int = 12  # video transformer blocks
    heads: int = 12  # video attention heads
    mlp_ratio: float = 4.0  # video MLP hidden = width * mlp_ratio
    ln_eps: float = 1e-6  # video LayerNorm eps (the reference's norm_layer)
    text_width: int = 768  # DistilBERT dim
    text_depth: int = 6  # DistilBERT layers
    text_heads: int = 12  # DistilBERT attention heads
    text_mlp: int = 3072  # DistilBERT hidden_dim
    vocab_size: int = 30522  # bert-base-uncased WordPiece vocabulary
    max_positions: int = 512  # DistilBERT position embeddings (= the tokenizer's truncation length)
    text_ln_eps: float = 1e-12  # DistilBERT LayerNorm eps
    proj_dim: int = 256  # joint space of the video / text embeddings
    temporal_fix: str = "zeros"  # a checkpoint with fewer frames than num_frames: zeros (reference default) | bilinear
    mean: tuple = (0.485, 0.456, 0.406)  # ImageNet normalisation, as EgoVLP's transforms
    std: tuple = (0.229, 0.224, 0.225)

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise FusedModelError(f"{self.name}: image_size {self.image_size} not a multiple of {self.patch_size}")
        if self.temporal_fix not in ("zeros", "bilinear"):
            raise FusedModelError(f"{self.name}: temporal_fix {self.temporal_fix!r} is not zeros or bilinear")

    @property
    def patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


_EGOVLP: dict[str, EgoVLPConfig] = {
    "egovlp-base": EgoVLPConfig(),
    "egovlp-tiny": EgoVLPConfig(name="egovlp-tiny", image_size=32, patch_size=8, num_frames=4, width=24, depth=3,
                                heads=2, text_width=20, text_depth=2, text_heads=2, text_mlp=40, vocab_size=54,
                                max_positions=24, proj_dim=12),
}

_CONFIGS: dict[str, FusedConfig] = {
    "egovlpv2-base": FusedConfig(),
    # EgoVLPv2_smallproj.pth / EgoVLPv2_smallproj_epoch1.pth (EK-100 MIR, CharadesEgo zero-shot): the same
    # backbone with model_epic_charades.py's 768 -> 256 heads, vid_proj = Linear, txt_proj = ReLU + Linear
    "egovlpv2-base-smallproj": FusedConfig(name="egovlpv2-base-smallproj", proj_dim=256, projection="small"),
    "egovlpv2-tiny": FusedConfig(name="egovlpv2-tiny", image_size=32, num_frames=4, width=32, depth=4, heads=2,
                                 text_width=24, text_depth=4, text_heads=2, text_mlp=48, vocab_size=320,
                                 max_positions=40, context_length=12, fused_layers=2, proj_dim=16),
}
_CONFIGS["egovlpv2-tiny-smallproj"] = replace(_CONFIGS["egovlpv2-tiny"], name="egovlpv2-tiny-smallproj", proj_dim=8,
                                              projection="small")


def list_fused_models() -> list[str]:
    """Names ``create_fused_model`` accepts: the EgoVLPv2 and EgoVLP configs and ``clip-fused-<open_clip model>``."""
    from egoflow.extract.clip import list_models

    return sorted(_CONFIGS) + sorted(_EGOVLP) + [f"clip-fused-{m}" for m in list_models()]


def get_fused_config(name: str, **overrides) -> FusedConfig:
    if name not in _CONFIGS:
        raise FusedModelError(f"unknown fused model {name!r}; known: {', '.join(sorted(_CONFIGS) + sorted(_EGOVLP))}"
                              ", clip-fused-<open_clip model>")
    try:
        return replace(_CONFIGS[name], **overrides)
    except TypeError as e:
        raise FusedModelError(f"{name}: bad config override ({e})") from None


def get_egovlp_config(name: str, **overrides) -> EgoVLPConfig:
    if name not in _EGOVLP:
        raise FusedModelError(f"unknown EgoVLP model {name!r}; known: {', '.join(sorted(_EGOVLP))}")
    try:
        return replace(_EGOVLP[name], **overrides)
    except TypeError as e:
        raise FusedModelError(f"{name}: bad config override ({e})") from None
