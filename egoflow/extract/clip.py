"""Frozen open_clip models: loading (tag | local checkpoint | none), batched tensor preprocessing, image encoding.

Weights are kept apart from architecture as in open_clip: ``model`` names an architecture config (open_clip's
own or egoflow's in ``model_configs/``), ``pretrained`` names weights: an open_clip tag (downloaded when
online), a local checkpoint path, or ``none`` (random init: a loud warning, the numbers mean nothing).

Speed on CPU: bf16 *weights* run ViT-B/32 ~4x faster than fp32 on CPUs with avx512_bf16/AMX (autocast gives
nothing; fp16 matmuls on CPU are ~1000x slower), so ``precision="auto"`` is bf16 there, fp32 on other CPUs and
fp16 on CUDA. Preprocessing runs on whole uint8 batches as tensors: the reader already resized the shorter side,
here we only crop, scale and normalise.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from egoflow.errors import EgoflowUserError

_CONFIG_DIR = Path(__file__).parent / "model_configs"
_MODEL_CACHE: dict[tuple, ClipEncoder] = {}


class EncoderError(EgoflowUserError, RuntimeError):
    pass


@dataclass(frozen=True)
class EncoderConfig:
    model: str = "ViT-B-32"  # open_clip architecture name (see list_models())
    pretrained: str = "none"  # open_clip tag, local checkpoint path, or "none" (random init)
    precision: str = "auto"  # auto | bf16 | fp32 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 64  # frames per forward pass
    normalize: bool = True  # L2-normalise image/text embeddings before storing
    recipe: str = ""  # "name@version" of the recipe that chose these settings (stored with the features)


def _register_configs() -> None:
    import open_clip

    if "egoflow-tiny-ViT" not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


def list_models() -> list[str]:
    """Architectures ``create_encoder`` accepts (open_clip's plus egoflow's tiny test configs)."""
    import open_clip

    _register_configs()
    return sorted(open_clip.list_models())


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        fast_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
            getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return torch.bfloat16 if fast_bf16 else torch.float32
    table = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
    if precision not in table:
        raise EncoderError(f"unknown precision {precision!r}: use auto, bf16, fp32 or fp16")
    if precision == "fp16" and device.type == "cpu":
        warnings.warn("fp16 on CPU is ~1000x slower than bf16 here; consider --precision bf16", stacklevel=2)
    return table[precision]


def weights_description(pretrained: str | None) -> dict:
    """What the weights are, for the feature-set config: a tag, or a local file with its size and mtime."""
    if pretrained is None or str(pretrained).lower() in ("none", ""):
        return {"pretrained": "none"}
    p = Path(pretrained).expanduser()
    if p.exists():
        st = p.stat()
        return {"pretrained": "file", "path": str(p.resolve()), "bytes": st.st_size, "mtime": int(st.st_mtime)}
    return {"pretrained": str(pretrained)}


class ClipEncoder:
    """A frozen open_clip model ready to encode uint8 frames and strings."""

    def __init__(self, cfg: EncoderConfig):
        import open_clip

        from egoflow.device import resolve_device

        _register_configs()
        if cfg.model not in open_clip.list_models():
            raise EncoderError(f"unknown open_clip model {cfg.model!r}; the accepted names are "
                               "egoflow.extract.clip.list_models() (open_clip's plus egoflow's tiny test configs)")
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_precision(cfg.precision, self.device)
        self.weights = weights_description(cfg.pretrained)
        pretrained = None if self.weights["pretrained"] == "none" else cfg.pretrained
        if pretrained is None:
            print(f"WARNING: {cfg.model} is RANDOMLY INITIALISED (pretrained=none): features are only good for "
                  "testing the pipeline, not for research numbers.", file=sys.stderr, flush=True)
        try:
            torch.manual_seed(0)  # random init is reproducible, so tests and demo are deterministic
            model = open_clip.create_model(cfg.model, pretrained=pretrained, device="cpu")
        except Exception as e:  # noqa: BLE001 - open_clip raises many types; the user needs the cause
            raise EncoderError(f"cannot load weights {cfg.pretrained!r} for {cfg.model}: {e}") from e
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        self.tokenizer = open_clip.get_tokenizer(cfg.model)
        pp = open_clip.get_model_preprocess_cfg(model)
        size = pp.get("size", 224)
        self.image_size = int(size if isinstance(size, int) else size[0])
        mean = pp.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = pp.get("std", (0.26862954, 0.26130258, 0.27577711))
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        with torch.no_grad():
            self.dim = int(self.model.encode_image(torch.zeros(1, 3, self.image_size, self.image_size,
                                                               device=self.device, dtype=self.dtype)).shape[-1])

    def describe(self) -> dict:
        """Every setting that changes the numbers (goes into the feature set's config hash)."""
        return {"encoder": "open_clip", "model": self.cfg.model, **self.weights,
                "precision": str(self.dtype).replace("torch.", ""), "normalize": self.cfg.normalize,
                "image_size": self.image_size, "crop": "center", "dim": self.dim,
                **({"recipe": self.cfg.recipe} if self.cfg.recipe else {})}

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> normalised ``[N, 3, S, S]`` (resize shorter side to S if needed, centre crop)."""
        if isinstance(frames, np.ndarray) and not frames.flags.writeable:
            frames = frames.copy()  # torch refuses to wrap read-only memory (e.g. decoder-owned buffers)
        x = torch.as_tensor(frames).to(self.device).permute(0, 3, 1, 2).float()
        s = self.image_size
        h, w = x.shape[-2:]
        if min(h, w) != s:  # the reader normally resized already; this keeps other callers correct
            scale = s / min(h, w)
            x = F.interpolate(x, size=(max(s, round(h * scale)), max(s, round(w * scale))), mode="bicubic",
                              antialias=True, align_corners=False).clamp_(0, 255)
            h, w = x.shape[-2:]
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        x = x[..., top:top + s, left:left + s]
        return ((x / 255.0 - self.mean) / self.std).to(self.dtype)

    @torch.inference_mode()
    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` -> float32 ``[N, D]`` image embeddings, in batches of ``cfg.batch_size``."""
        out = []
        for i in range(0, len(frames), self.cfg.batch_size):
            emb = self.model.encode_image(self.preprocess(frames[i:i + self.cfg.batch_size])).float()
            out.append(F.normalize(emb, dim=-1) if self.cfg.normalize else emb)
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def encode_text(self, strings: list[str], tokens: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Strings -> pooled ``[N, D]`` (end-of-text token, projected), token-level ``[N, L, D]`` and lengths ``[N]``.

        Token features are the final-layer outputs (after ``ln_final``) of every token, through the same text
        projection as the pooled embedding, so both live in the joint space.
        """
        m = self.model
        captured = {}
        hook = None
        if tokens and hasattr(m, "ln_final") and getattr(m, "text_projection", None) is not None:
            hook = m.ln_final.register_forward_hook(lambda _m, _i, o: captured.__setitem__("x", o))
        pooled, toks, lens = [], [], []
        try:
            for i in range(0, len(strings), self.cfg.batch_size):
                text = self.tokenizer(strings[i:i + self.cfg.batch_size]).to(self.device)
                emb = m.encode_text(text).float()
                pooled.append(F.normalize(emb, dim=-1) if self.cfg.normalize else emb)
                if hook is not None:
                    x = captured["x"]
                    proj = m.text_projection
                    t = (proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj).float()
                    toks.append(F.normalize(t, dim=-1) if self.cfg.normalize else t)
                    lens.append((text != 0).sum(1))  # pad id is 0 for open_clip's tokenizers
        finally:
            if hook is not None:
                hook.remove()
        if not pooled:
            return np.zeros((0, self.dim), np.float32), None, None
        P = torch.cat(pooled).cpu().numpy()
        if hook is None:
            return P, None, None
        return P, torch.cat(toks).cpu().numpy(), torch.cat(lens).cpu().numpy()


def create_encoder(model: str = "ViT-B-32", pretrained: str | None = "none", precision: str = "auto",
                   device: str = "auto", batch_size: int = 64, normalize: bool = True, recipe: str = ""
                   ) -> ClipEncoder:
    """Load (once per process) a frozen open_clip encoder; see :class:`EncoderConfig`."""
    cfg = EncoderConfig(model, str(pretrained if pretrained is not None else "none"), precision, device,
                        batch_size, normalize, recipe)
    key = tuple(asdict(cfg).values()) + (os.path.getmtime(cfg.pretrained) if os.path.exists(cfg.pretrained) else 0,)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = ClipEncoder(cfg)
    return _MODEL_CACHE[key]
