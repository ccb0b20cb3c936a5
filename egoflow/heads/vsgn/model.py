"""VSGN head for Ego4D Moment Queries, trained from cached features.

Zhao, Thabet & Ghanem, "Video Self-Stitching Graph Network for Temporal Action Localization" (ICCV 2021), as
used by the Ego4D MQ baseline: conv stem -> xGPN (temporal conv || kNN graph conv per level, pooled between
levels, decoder fusing back up) -> anchors of several scales per level -> classification / regression towers
-> boundary adjustment -> Soft-NMS per class. The model sees only arrays: clips resampled to
``temporal_scale`` steps, ``feats [B, T, Dv]`` + ``mask [B, T]`` (``egoflow.heads.vsgn.data`` makes them).

    model, criterion, decode = build(Config(video_dim=512, labels=("cut vegetables", ...)))
    out = model(batch); loss = criterion(out, batch)["loss"]; preds = decode(out, batch)

Layers: ``layers.py``; losses: ``loss.py``; scores, Soft-NMS and seconds: ``post.py``; from a feature store
through the shared runner: ``egoflow.heads.runner.train("vsgn", ...)`` (hooks in ``head.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from egoflow.heads.vsgn.layers import XGN, Tower, conv_relu, decode_segments, make_anchors, sample_at, take_at
from egoflow.heads.vsgn.loss import VSGNCriterion
from egoflow.heads.vsgn.post import make_decode


class VSGNConfigError(ValueError):
    """A VSGN config that cannot work (no labels, temporal scale not divisible by the pyramid, ...)."""


class VSGNInputError(ValueError):
    """The model was given features it cannot localise in (wrong dim, too short, wrong length)."""


@dataclass
class Config:
    video_dim: int = 512  # feature dim Dv; the runner takes it from the feature set
    labels: tuple = ()  # class vocabulary, class id = index + 1 (0 = background); from the train annotations
    temporal_scale: int = 928  # steps every clip is resampled to (Ego4D MQ baseline: 928)
    hidden_dim: int = 256  # channels of the pyramid and towers
    num_levels: int = 5  # pyramid levels; level l has stride 2^l
    num_head_layers: int = 4  # conv + GroupNorm + ReLU layers in each tower
    use_graph: bool = True  # xGPN graph branch at every level; False = plain temporal-conv pyramid
    num_neighbours: int = 12  # k of the kNN graph in feature space
    graph_mode: str = "feat_ctr"  # edge features: "feat_ctr" [x_j, x_i] | "dif_ctr" [x_j - x_i, x_i] | "feat"
    graph_agg: str = "max"  # aggregation over neighbours: "max" | "mean"
    anchor_scales: tuple = (1.0, 10.0)  # anchor widths per level, in units of the level's stride
    boundary_beta: float = 8.0  # boundary adjustment samples at +-width/beta around each boundary
    box_offset: float = 0.0  # added to every segment length (anchors, box coding, IoU): 0 = continuous segments
    #                          (egoflow); 1 = the baseline's inclusive boxes (TO_REMOVE = 1)
    bd_mode: str = "interp"  # boundary adjustment: "interp" linear interpolation, offsets in units of width/beta |
    #                          "reference" the baseline's features at trunc(position), raw offsets
    bd_detach: bool = True  # stop the stage-2 loss gradient into the coarse segments (the baseline: False)
    aux_loss: str = "logits"  # actionness/start/end: "logits" centre-rule targets, BCE on logits | "reference" the
    #                           baseline's targets (round() frame span) and balanced log(sigmoid + 1e-5) loss
    iou_thr_anchor: float = 0.5  # anchor-vs-instance IoU making an anchor a regression positive
    iou_thr_stage1: float = 0.5  # coarse-segment IoU making an anchor a classification positive
    iou_thr_stage2: float = 0.7  # coarse-segment IoU making it a positive of the boundary adjustment
    match_unreached: str = "skip"  # an instance no candidate overlaps: "skip" (no positives) | "reference" (the
    #                                baseline's low-quality rule: every candidate ties at IoU 0 and is matched)
    cls_loss: str = "balanced"  # "balanced" softmax CE (mean over pos + mean over neg) | "focal" (sigmoid)
    focal_alpha: float = 0.25  # focal loss: weight of positives
    focal_gamma: float = 2.0  # focal loss: focusing exponent
    w_cls: float = 1.0  # loss weight: classification
    w_reg: float = 1.0  # loss weight: stage-1 GIoU regression
    w_adjust: float = 1.0  # loss weight: stage-2 (boundary adjustment) GIoU regression
    w_aux: float = 1.0  # loss weight: each of the actionness/start/end terms (MQ/Train.py: 0.2)
    stitching: bool = False  # video self-stitching of short clips (off, as in the Ego4D baseline)
    stitch_gap: int = 30  # zero steps between the original and the magnified copy
    short_ratio: float = 0.4  # clips with at most short_ratio * temporal_scale stored steps get stitched
    use_boundary_scores: bool = True  # multiply class scores by start/end confidence at the refined boundaries
    boundary_score: str = "interp"  # that confidence: "interp" linear interpolation between step centres |
    #                                 "reference" mean of steps floor(x), ceil(x) (MQ/Infer.py)
    nms_sigma: float = 0.46  # Gaussian Soft-NMS: score *= exp(-IoU^2 / sigma) (Ego4D baseline's alpha)
    pre_nms_topk: int = 2000  # (anchor, class) candidates kept per clip before Soft-NMS
    max_per_clip: int = 200  # predictions per clip after Soft-NMS (top-N)
    min_score: float = 1e-6  # candidates below this score are dropped
    primary_only: bool = True  # train on primary instances only (what the official evaluation scores)
    on_missing: str = "error"  # clips whose video/features are missing: "error" | "skip"

    def __post_init__(self):
        self.labels = tuple(self.labels)
        self.anchor_scales = tuple(float(s) for s in self.anchor_scales)
        pyr = 2 ** (self.num_levels - 1)
        if self.num_levels < 1 or self.temporal_scale < pyr or self.temporal_scale % pyr:
            raise VSGNConfigError(f"temporal_scale={self.temporal_scale} must be a positive multiple of "
                                  f"2^(num_levels-1)={pyr} so that every pyramid level has whole steps")
        if self.cls_loss not in ("balanced", "focal"):
            raise VSGNConfigError(f"cls_loss must be 'balanced' or 'focal', not {self.cls_loss!r}")
        if self.boundary_score not in ("reference", "interp"):
            raise VSGNConfigError(f"boundary_score must be 'reference' or 'interp', not {self.boundary_score!r}")
        if self.match_unreached not in ("reference", "skip"):
            raise VSGNConfigError(f"match_unreached must be 'reference' or 'skip', not {self.match_unreached!r}")
        if self.bd_mode not in ("reference", "interp") or self.aux_loss not in ("reference", "logits"):
            raise VSGNConfigError(f"bd_mode must be 'reference' or 'interp' (got {self.bd_mode!r}) and aux_loss "
                                  f"'reference' or 'logits' (got {self.aux_loss!r})")
        if not self.anchor_scales or min(self.anchor_scales) <= 0:
            raise VSGNConfigError(f"anchor_scales must be positive, got {self.anchor_scales}")


class VSGNModel(nn.Module):
    """VSGN on ``feats [B, T, Dv]`` + ``mask [B, T]`` (T = temporal_scale). See ``forward`` for outputs."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        H, L, A = cfg.hidden_dim, cfg.num_levels, len(cfg.anchor_scales)
        self.num_classes = len(cfg.labels)
        self.stem = nn.Sequential(nn.Conv1d(cfg.video_dim, H, 3, padding=1), nn.ReLU())
        self.enc = nn.ModuleList(XGN(H, cfg.num_neighbours, 1 if i == 0 else 2, cfg.use_graph, cfg.graph_mode,
                                     cfg.graph_agg) for i in range(L))
        # decoder (coarse -> fine): upsample the level above, add a lateral conv of the encoder level, fuse
        self.up = nn.ModuleList(nn.Sequential(nn.ConvTranspose1d(H, H, 3, stride=2, padding=1, output_padding=1),
                                              nn.ReLU()) for _ in range(L - 1))
        self.lateral = nn.ModuleList(conv_relu(H) for _ in range(L - 1))
        self.fuse = nn.ModuleList(conv_relu(H) for _ in range(L))
        self.cls_tower = Tower(H, cfg.num_head_layers, A * (self.num_classes + 1))  # +1: background
        self.reg_tower = Tower(H, cfg.num_head_layers, A * 2)
        self.aux = nn.ModuleDict({n: nn.Sequential(nn.Conv1d(H, H, 3, padding=1), nn.ReLU(), nn.Conv1d(H, 1, 1))
                                  for n in ("actionness", "startness", "endness")})
        # boundary adjustment: features at (b - w/beta, b, b + w/beta) of each coarse boundary -> an offset
        self.bd_start = nn.Sequential(nn.Linear(3 * H, H), nn.ReLU(), nn.Linear(H, 1))
        self.bd_end = nn.Sequential(nn.Linear(3 * H, H), nn.ReLU(), nn.Linear(H, 1))
        self.register_buffer("anchors", make_anchors(cfg.temporal_scale, L, tuple(cfg.anchor_scales),
                                                        cfg.box_offset), False)
        # background prior: most anchors are negatives, so start the classifier there (stable early training)
        nn.init.constant_(self.cls_tower.out.bias, 0.0)

    def check_input(self, feats: torch.Tensor, mask: torch.Tensor) -> None:
        cfg = self.cfg
        if feats.ndim != 3 or feats.shape[-1] != cfg.video_dim:
            raise VSGNInputError(f"VSGN expects feats [batch, {cfg.temporal_scale}, {cfg.video_dim}], "
                                 f"got {list(feats.shape)} (feature dim must equal Config.video_dim)")
        if feats.shape[1] != cfg.temporal_scale:
            raise VSGNInputError(f"VSGN expects clips resampled to temporal_scale={cfg.temporal_scale} steps, got "
                                 f"{feats.shape[1]} (use egoflow.heads.vsgn.data to resample)")
        if mask.shape != feats.shape[:2]:
            raise VSGNInputError(f"mask {list(mask.shape)} does not match feats {list(feats.shape[:2])}")

    def forward(self, batch: dict) -> dict:
        """Outputs, N = number of anchors, K = classes + 1 (index 0 = background):

        cls_logits [B, N, K]; reg [B, N, 2]; segments [B, N, 2] (coarse, positions); anchors [N, 2];
        refined [B, N, 2] (after boundary adjustment); actionness/startness/endness [B, T] logits.
        """
        feats, mask = batch["feats"], batch["mask"].bool()
        self.check_input(feats, mask)
        part = batch.get("part")
        x = self.stem(feats.transpose(1, 2)).transpose(1, 2)
        enc, m, p = [], mask, part
        for level in self.enc:
            x, m, p = level(x, m, p)
            enc.append(x)
        # decoder: dec[lvl] has the resolution of enc[lvl]
        y = self.fuse[0](enc[-1].transpose(1, 2))
        dec = [y]
        for i, lvl in enumerate(range(len(enc) - 2, -1, -1)):
            y = self.fuse[i + 1](self.lateral[i](enc[lvl].transpose(1, 2)) + self.up[i](y))
            dec.append(y)
        dec = dec[::-1]  # finest first, like the anchors; each [B, H, T_l]
        B, cfg = feats.shape[0], self.cfg
        cls = torch.cat([self.cls_tower(d).transpose(1, 2).reshape(B, -1, self.num_classes + 1) for d in dec], 1)
        reg = torch.cat([self.reg_tower(d).transpose(1, 2).reshape(B, -1, 2) for d in dec], 1)
        segments = decode_segments(reg, self.anchors, cfg.box_offset)
        fine = dec[0]  # [B, H, T], stride 1
        out = {"cls_logits": cls, "reg": reg, "segments": segments, "anchors": self.anchors}
        for name, head in self.aux.items():
            out[name] = head(fine).squeeze(1)
        out["refined"] = self.adjust(segments.detach() if cfg.bd_detach else segments, fine.transpose(1, 2))
        return out

    def adjust(self, seg: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Boundary adjustment: ``seg [B, N, 2]`` coarse segments, ``fine [B, T, H]`` -> refined ``[B, N, 2]``.

        Features at each boundary and at +-length/beta around it go through a small MLP (the baseline's
        kernel-3 conv over those three points) to an offset added to the boundary. "reference": the features
        of the steps ``trunc(position)``, raw offsets; "interp": linear interpolation, offsets in width/beta.
        """
        T, beta, o = fine.shape[1], self.cfg.boundary_beta, self.cfg.box_offset
        ref = self.cfg.bd_mode == "reference"
        loc = seg.clamp(0, T - 1) if ref else seg.clamp(0, T)
        w = (loc[..., 1] - loc[..., 0] + o) / beta if ref else (loc[..., 1] - loc[..., 0]).clamp(min=1.0) / beta
        out = []
        for i, head in ((0, self.bd_start), (1, self.bd_end)):
            b = loc[..., i]
            pts = torch.stack((b - w, b, b + w), dim=-1).flatten(1)  # [B, N*3] positions
            f = (take_at(fine, pts) if ref else sample_at(fine, pts)).view(seg.shape[0], seg.shape[1], -1)
            off = head(f).squeeze(-1)  # [B, N]
            out.append(seg[..., i] + off if ref else b + off * w)
        return torch.stack(out, dim=-1)


def build(cfg: Config | None = None):
    """``(model, criterion, decode)`` for ``cfg``; needs ``cfg.labels``."""
    cfg = cfg or Config()
    if not cfg.labels:
        raise VSGNConfigError("VSGN needs the label vocabulary: Config(labels=...) (the runner fills it from the "
                              "training annotations)")
    return VSGNModel(cfg), VSGNCriterion(cfg), make_decode(cfg)
