"""The fused backbone as an extraction encoder: whole windows of F frames in, one feature per window out.

Same role as :class:`egoflow.extract.clip.ClipEncoder` for the pipeline (``image_size``, ``describe()``,
``encode_text``), plus ``encode_windows`` (dual features, fusion off = alpha 0) and the reuse split for
query-conditioned features (``window_tokens`` once per window, ``conditioned`` once per query). A dual-only
model (``egovlp-*``: no fusion) gives dual features and text embeddings only; the conditioned path refuses it.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from egoflow.extract.clip import resolve_precision, weights_description
from egoflow.extract.fused.config import FusedModelError

_CACHE: dict[tuple, FusedEncoder] = {}


@dataclass(frozen=True)
class FusedEncoderConfig:
    model: str = "egovlpv2-base"  # registry name (list_fused_models())
    pretrained: str = "none"  # checkpoint path (EgoVLPv2 names; open_clip tag/path for clip-fused) or none
    tokenizer: str = ""  # folder: vocab.json + merges.txt (EgoVLPv2), vocab.txt (EgoVLP); clip-fused: open_clip's
    num_frames: int = 16  # F frames per window
    fusion_checkpoint: str = ""  # clip-fused: tuned fusion weights (fusion tuning output)
    precision: str = "auto"  # auto | bf16 | fp32 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 8  # windows per forward pass
    normalize: bool = True  # L2-normalise dual embeddings before storing (MQ's reference feature is not)
    frame_rule: str = ""  # a reference loader's frame rule (extract.reference.FRAME_RULES); "" egoflow's pts rule
    transform: str = ""  # a reference test transform (extract.reference.TRANSFORMS); "" bicubic shorter side + crop
    pre_resize: int = 0  # decoder resizes to this height first (the references' offline ffmpeg copy); 0 off
    window_rate: float = 0.0  # start-end-decord windows per second (the references use 1.87)
    tail: str = ""  # a window past the last frame: "" padded by repeating it | "drop" (QFVS's drop_last)
    text_tokens: str = ""  # token features of encode_text: "" none | "hidden" | "proj-inner" (see encode_text)
    recipe: str = ""  # "name@version" of the recipe that chose these settings (stored with the features)


def _check_reference(cfg: FusedEncoderConfig) -> None:
    from egoflow.extract.reference import FRAME_RULES, TRANSFORMS

    if cfg.frame_rule and cfg.frame_rule not in FRAME_RULES:
        raise FusedModelError(f"unknown frame rule {cfg.frame_rule!r}: use one of {', '.join(FRAME_RULES)}")
    if cfg.transform and cfg.transform not in TRANSFORMS:
        raise FusedModelError(f"unknown reference transform {cfg.transform!r}: use one of {', '.join(TRANSFORMS)}")
    if cfg.frame_rule == "start-end-decord" and cfg.window_rate <= 0:
        raise FusedModelError("frame rule start-end-decord needs window_rate > 0 (windows per second)")
    if cfg.tail not in ("", "drop"):
        raise FusedModelError(f"unknown tail {cfg.tail!r}: use '' (last frame repeated) or 'drop'")
    if cfg.text_tokens not in ("", "hidden", "proj-inner"):
        raise FusedModelError(f"unknown text_tokens {cfg.text_tokens!r}: use '', 'hidden' or 'proj-inner'")


class FusedEncoder:
    clip_level = True  # the pipeline feeds whole windows (see pipeline.extract_one)

    def __init__(self, cfg: FusedEncoderConfig):
        from egoflow.device import resolve_device
        from egoflow.extract.fused import create_fused_model

        self.cfg = cfg
        _check_reference(cfg)
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_precision(cfg.precision, self.device)
        self.weights = weights_description(cfg.pretrained)
        pre = None if self.weights["pretrained"] == "none" else cfg.pretrained
        self.is_clip = cfg.model.startswith("clip-fused-")
        self.dual_only = cfg.model.startswith("egovlp-")  # EgoVLP: no fusion layers, no VTM head
        kw = {"fusion_checkpoint": cfg.fusion_checkpoint or None} if self.is_clip else {}
        model = create_fused_model(cfg.model, pretrained=pre, num_frames=cfg.num_frames, **kw)
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        if self.is_clip:
            import open_clip

            name = cfg.model[len("clip-fused-"):]
            self._oc_tok = open_clip.get_tokenizer(name)
            pp = open_clip.get_model_preprocess_cfg(model.clip)
            self.image_size = model.image_size
            mean = pp.get("mean", (0.48145466, 0.4578275, 0.40821073))
            std = pp.get("std", (0.26862954, 0.26130258, 0.27577711))
            self.dim = model.embed_dim
            self._fused_dim = model.embed_dim
        else:
            self._bpe = None
            if cfg.tokenizer and self.dual_only:
                from egoflow.extract.fused.egovlp_text import WordPiece

                self._bpe = WordPiece(cfg.tokenizer, max_length=model.cfg.max_positions)
            elif cfg.tokenizer:
                from egoflow.extract.fused.tokenizer import RobertaBPE

                self._bpe = RobertaBPE(cfg.tokenizer, max_length=model.cfg.max_positions - model.cfg.pad_id - 1)
            self.image_size = model.cfg.image_size
            mean, std = model.cfg.mean, model.cfg.std
            self.dim = model.cfg.proj_dim
            self._fused_dim = None if self.dual_only else model.cfg.width
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    @property
    def fused_dim(self) -> int:
        """Width of query-conditioned features (refused for a dual-only model before anything is written)."""
        self._need_fusion()
        return self._fused_dim

    def _need_fusion(self):
        if self.dual_only:
            raise FusedModelError(f"{self.cfg.model} is a dual encoder (EgoVLP has no fusion layers): it gives dual "
                                  "window features and text embeddings, not query-conditioned features (--queries);"
                                  " use egovlpv2-base or clip-fused-<model> for those")

    def describe(self) -> dict:
        """Every setting that changes the numbers (feature-set config hash)."""
        d = {"encoder": "fused", "model": self.cfg.model, **self.weights, "num_frames": self.cfg.num_frames,
             "precision": str(self.dtype).replace("torch.", ""), "normalize": self.cfg.normalize,
             "image_size": self.image_size, "crop": "center", "dim": self.dim, "pooling": "fused-dual-cls",
             "tail": "last frame repeated"}
        if self.cfg.fusion_checkpoint:
            d["fusion_checkpoint"] = weights_description(self.cfg.fusion_checkpoint)
        if self.cfg.transform:
            d.update(crop=self.cfg.transform, interpolation="bilinear-no-antialias", pre_resize=self.cfg.pre_resize)
        if self.cfg.tail:
            d["tail"] = "dropped"
        if self.cfg.frame_rule:
            d.update(frame_rule=self.cfg.frame_rule, window_rate=self.cfg.window_rate, tail="dropped")
        if self.cfg.text_tokens:
            d["text_tokens"] = self.cfg.text_tokens
        if self.cfg.recipe:
            d["recipe"] = self.cfg.recipe
        return d

    # frames ------------------------------------------------------------------------------------------------
    def preprocess(self, frames) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> normalised ``[N, 3, S, S]`` (shorter side to S, centre crop; or the recipe's
        reference transform, in float32 before the cast to the model's precision)."""
        if self.cfg.transform:
            from egoflow.extract.reference import transform

            x = transform(np.asarray(frames), self.cfg.transform, self.mean.flatten().tolist(),
                          self.std.flatten().tolist(), self.image_size)
            return x.to(self.device).to(self.dtype)
        if isinstance(frames, np.ndarray) and not frames.flags.writeable:
            frames = frames.copy()
        x = torch.as_tensor(frames).to(self.device).permute(0, 3, 1, 2).float()
        s = self.image_size
        h, w = x.shape[-2:]
        if min(h, w) != s:
            k = s / min(h, w)
            x = F.interpolate(x, size=(max(s, round(h * k)), max(s, round(w * k))), mode="bicubic",
                              antialias=True, align_corners=False).clamp_(0, 255)
            h, w = x.shape[-2:]
        top, left = round((h - s) / 2.0), round((w - s) / 2.0)
        x = x[..., top:top + s, left:left + s]
        return ((x / 255.0 - self.mean) / self.std).to(self.dtype)

    def _clips(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 ``[B, F, H, W, 3]`` -> ``[B, F, 3, S, S]``."""
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[1] != self.cfg.num_frames:
            raise FusedModelError(f"windows must be [B, {self.cfg.num_frames}, H, W, 3], got {list(clips.shape)}")
        B, Fr = clips.shape[:2]
        return self.preprocess(clips.reshape(B * Fr, *clips.shape[2:])).view(B, Fr, 3, self.image_size,
                                                                             self.image_size)

    @torch.inference_mode()
    def encode_video_windows(self, path, cfg, progress: bool = False):
        """``(feats [T, D], times [T], frames decoded)`` of one video's windows (what the pipeline stores)."""
        from egoflow.extract.fused.extract import encode_video_windows

        return encode_video_windows(path, self, cfg, progress)

    def encode_windows(self, clips: np.ndarray) -> np.ndarray:
        """Dual (alpha = 0) features of windows: uint8 ``[B, F, H, W, 3]`` -> float32 ``[B, dim]``."""
        out = []
        for i in range(0, len(clips), self.cfg.batch_size):
            e = self.model.encode_video(self._clips(clips[i:i + self.cfg.batch_size])).float()
            out.append(F.normalize(e, dim=-1) if self.cfg.normalize else e)
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.dim), np.float32)

    # text --------------------------------------------------------------------------------------------------
    def tokenize(self, strings: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """strings -> (ids ``[N, L]``, mask ``[N, L]``) on the device."""
        if self.is_clip:
            ids = self._oc_tok(list(strings))
            return ids.to(self.device), (ids != 0).long().to(self.device)
        if self._bpe is None:
            need = "vocab.txt of distilbert-base-uncased" if self.dual_only else "vocab.json and merges.txt of " \
                "roberta-base"
            raise FusedModelError(f"{self.cfg.model}: text needs --tokenizer DIR (a folder with {need})")
        ids, mask = self._bpe(strings)
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def encode_text(self, strings: list[str], tokens: bool = False):
        """Strings -> (dual embeddings ``[N, dim]``, token features ``[N, L, text width]`` or None, lengths
        ``[N]`` or None). Tokens come only with ``text_tokens``: "hidden" = the unfused text tower's last hidden
        states, <s> and </s> included (what EgoVLPv2's NLQ code stores for VSLNet); "proj-inner" = those states
        through the text projection without the first and last token (what EgoVLP's test_nlq.py stores)."""
        want = tokens and bool(self.cfg.text_tokens)
        if want and (self.is_clip or not hasattr(self.model, "text_proj")):
            raise FusedModelError(f"{self.cfg.model}: token features (text_tokens={self.cfg.text_tokens}) need a "
                                  "text tower with a text projection (EgoVLPv2/EgoVLP models)")
        out, toks, lens = [], [], []
        for i in range(0, len(strings), 64):
            ids, mask = self.tokenize(strings[i:i + 64])
            if want:
                h = self.model.text(ids, mask)  # [B, L, Dt]
                e = self.model.text_proj(h[:, 0]).float()
                inner = self.cfg.text_tokens == "proj-inner"
                t = (self.model.text_proj(h) if inner else h).float()
                toks += [x[1:int(n) - 1] if inner else x[:int(n)] for x, n in zip(t.cpu().numpy(), mask.sum(1))]
                lens += [len(x) for x in toks[len(lens):]]
            else:
                e = self.model.encode_text(ids, mask).float()
            out.append(F.normalize(e, dim=-1) if self.cfg.normalize else e)
        P = torch.cat(out).cpu().numpy() if out else np.zeros((0, self.dim), np.float32)
        if not want:
            return P, None, None
        T = np.zeros((len(toks), max(max(lens, default=1), 1), toks[0].shape[1] if toks else 1), np.float32)
        for j, t in enumerate(toks):
            T[j, :len(t)] = t
        return P, T, np.asarray(lens, dtype=np.int64)

    # fused path with reuse -------------------------------------------------------------------------------
    @torch.inference_mode()
    def window_tokens(self, clips: np.ndarray):
        """Text-independent work once per window: uint8 ``[B, F, H, W, 3]`` -> a cache for :meth:`conditioned`
        (the lower layers' tokens; for EgoVLPv2 models also the first fused layer's query-free parts)."""
        self._need_fusion()
        parts = [self._clips(clips[i:i + self.cfg.batch_size]) for i in range(0, len(clips), self.cfg.batch_size)]
        if self.is_clip:
            return {"v": torch.cat([self.model.video_lower(p) for p in parts])}
        caches = [self.model.window_cache(p) for p in parts]
        out = {k: torch.cat([c[k] for c in caches]) for k in caches[0] if k != "kv"}
        if "kv" in caches[0]:
            out["kv"] = tuple(torch.cat([c["kv"][j] for c in caches]) for j in range(2))
        return out

    def _text(self, query: str):
        ids, mask = self.tokenize([query])
        return self.model.text_lower(ids, mask)

    def _expand(self, t, bias, n):
        tb = t.expand(n, *t.shape[1:])
        bb = (bias[0].expand(n, -1), bias[1]) if self.is_clip else bias.expand(n, *bias.shape[1:])
        return tb, bb

    def _outputs(self, vf, tf, bb):
        o = self.model.fused_outputs(vf, tf, bb[0]) if self.is_clip else self.model.fused_outputs(vf, tf)
        return o["video"].float(), o["vtm"].float().softmax(-1)[:, 1]

    @torch.inference_mode()
    def conditioned(self, cache: dict, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Top M fused layers for one query over a window cache -> (video features ``[B, fused_dim]``,
        P(match) ``[B]``)."""
        self._need_fusion()
        t, bias = self._text(query)
        feats, scores = [], []
        for i in range(0, len(cache["v"]), self.cfg.batch_size):
            sl = slice(i, i + self.cfg.batch_size)
            v = cache["v"][sl]
            tb, bb = self._expand(t, bias, len(v))
            if self.is_clip:
                vf, tf = self.model.fuse(v, tb, bb)
            else:
                part = {"s": cache["s"][sl], "kv": tuple(x[sl] for x in cache["kv"])} if "s" in cache else None
                vf, tf = self.model.fuse(v, tb, bb, cache=part, cls_only=True)
            f, s = self._outputs(vf, tf, bb)
            feats.append(f)
            scores.append(s)
        return torch.cat(feats).cpu().numpy(), torch.cat(scores).cpu().numpy()

    @torch.inference_mode()
    def conditioned_full(self, clips: np.ndarray, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole fused model per (window, query), no reuse (the reference's way; for comparisons)."""
        self._need_fusion()
        feats, scores = [], []
        for i in range(0, len(clips), self.cfg.batch_size):
            video = self._clips(clips[i:i + self.cfg.batch_size])
            t, bias = self._text(query)
            tb, bb = self._expand(t, bias, len(video))
            vf, tf = self.model.fuse(self.model.video_lower(video), tb, bb)
            f, s = self._outputs(vf, tf, bb)
            feats.append(f)
            scores.append(s)
        return torch.cat(feats).cpu().numpy(), torch.cat(scores).cpu().numpy()


def create_fused_encoder(model: str = "egovlpv2-base", pretrained: str | None = "none", tokenizer: str = "",
                         num_frames: int = 16, precision: str = "auto", device: str = "auto", batch_size: int = 8,
                         normalize: bool = True, fusion_checkpoint: str = "", **reference) -> FusedEncoder:
    """Load (once per process) a fused encoder; see :class:`FusedEncoderConfig` (``reference``: frame_rule,
    transform, pre_resize, window_rate, tail, text_tokens, recipe)."""
    cfg = FusedEncoderConfig(model, str(pretrained if pretrained is not None else "none"), tokenizer or "",
                             num_frames, fusion_checkpoint or "", precision, device, batch_size, normalize,
                             **reference)
    key = tuple(asdict(cfg).values()) + tuple(os.path.getmtime(p) if p and os.path.exists(p) else 0
                                              for p in (cfg.pretrained, cfg.fusion_checkpoint))
    if key not in _CACHE:
        _CACHE[key] = FusedEncoder(cfg)
    return _CACHE[key]
