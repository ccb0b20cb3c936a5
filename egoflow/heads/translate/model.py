"""VideoTranslate (Korbar et al., "Video Understanding as Machine Translation", 2022) over cached features.

Video is one more language: a T5 encoder reads ``[task prefix tokens; projected video steps; noisy text tokens]``
and the decoder is trained with plain cross-entropy to write the clean text. The noise (training only) shuffles
the text tokens and masks a fraction of them drawn ~U[lo, hi] once per mini-batch; a run of masked tokens
becomes one ``<mask>`` (as T5 sentinels do), so at ratio 1 the text side is a single ``<mask>`` — exactly what
inference feeds, and the target's length never leaks. One network then

- captions (``generate``: greedy or beam search),
- ranks candidate strings by their mean token log-likelihood (classification, multiple choice; see rank.py),
- and, in ``mode="discriminative"``, classifies with linear layers on the masked mean of the encoder output
  (``disc_pool="mean"``) or on the output of a learned token put in front of the encoder input
  (``disc_pool="token"``, [CLS]-style); ``fusion="gen+disc"`` trains the decoder and the layers together and
  sums their standardized class scores (rank.fuse).

The network is ``transformers``' ``T5ForConditionalGeneration`` driven through ``inputs_embeds`` (real T5
weights from a local folder via ``--init``; tests and the demo use tiny random configs).

    model, criterion, decode = build(Config(video_dim=256, vocab_size=100))
    loss = criterion(model(batch), batch)["loss"]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PREFIXES = {"narration": "narrate video:", "label": "label video:", "verb": "verb of video:",
            "noun": "noun of video:"}  # task prefix text per target kind (the seed's "task prefix tokens")


@dataclass
class Config:
    video_dim: int = 256  # width of the store's video features (filled from the feature set)
    d_model: int = 512  # T5 width (t5-small: 512); a --init T5 folder fixes every T5 field
    d_kv: int = 64  # per-head attention width
    d_ff: int = 2048  # feed-forward width
    num_layers: int = 6  # encoder layers
    num_decoder_layers: int = 6  # decoder layers
    num_heads: int = 8  # attention heads
    feed_forward_proj: str = "relu"  # T5 v1.0 "relu", v1.1 "gated-gelu"
    tie_word_embeddings: bool = True  # T5 v1.0 True; v1.1 False (unscaled decoder output; transformers 5)
    dropout: float = 0.1  # T5 dropout_rate
    vocab_size: int = 32128  # filled from the tokenizer (or the T5 folder)
    pad_id: int = 0  # tokenizer ids (filled from the tokenizer)
    eos_id: int = 1
    mask_id: int = 3
    tokenizer: str = ""  # the run's tokenizer folder (written by train; predict reads it)
    num_frames: int = 16  # video steps per clip: a clip's steps are average-pooled into this many bins
    window_s: float = 4.0  # a narration's clip: this many seconds centred on its timestamp
    max_narration_len: int = 20  # target tokens (with </s>) of a narration; longer ones are cut and counted
    max_label_len: int = 12  # target tokens (with </s>) of a label / class name
    mask_ratio: tuple = (0.0, 1.0)  # token masking ratio ~ U[lo, hi], drawn once per mini-batch
    shuffle: bool = True  # shuffle the noisy text tokens (the seed's second noise)
    mode: str = "generative"  # "generative" (decoder, ranking) | "discriminative" (linear layers on the encoder)
    num_classes: tuple = ()  # discriminative: classes per label set, e.g. (97, 300) for EK-100 verb, noun
    multilabel: bool = False  # discriminative: sigmoid + BCE (CharadesEgo) instead of softmax + CE (EK-100)
    num_beams: int = 1  # captioning: 1 = greedy, > 1 = beam search
    rank_chunk: int = 64  # candidates decoded together when ranking (memory: clips x chunk x tokens x vocab)
    narrations: str = ""  # multi-task fine-tuning: an Ego4D narration.json whose narrations train back to back
    drop_outside: bool = False  # narrations/clips outside their video: drop and count (True) or fail (False)
    size: str = ""  # "t5-small" | "t5-base" | "t5-large" fixes the shape fields above (sizes.py); "" = as set
    disc_pool: str = "mean"  # discriminative input: "mean" of the encoder output | "token": a learned first token's
    fusion: str = "auto"  # class scores: "gen" ranking | "disc" layers | "gen+disc" both | "auto" = by mode
    fusion_weight: float = 0.5  # gen+disc: weight of the standardized layer scores (1 - it: the ranking's)


def fusion_of(cfg: Config) -> str:
    """The class-score rule of a config: ``fusion``, or with ``"auto"`` the mode's own (gen / disc)."""
    if cfg.fusion == "auto":
        return "gen" if cfg.mode == "generative" else "disc"
    return cfg.fusion


def noise_tokens(ids: torch.Tensor, mask: torch.Tensor, ratio: float, mask_id: int, pad_id: int,
                 shuffle: bool = True, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy copy of text tokens ``ids [B, L]`` (valid where ``mask [B, L]``, no ``</s>``) -> ``(ids [B, L'],
    mask [B, L'])``: shuffled (optional), ``round(ratio * n)`` tokens masked, each run of masks merged into one
    ``mask_id``; an empty text becomes one ``mask_id``. Deterministic in ``generator`` (default: torch's)."""
    rows = []
    for b in range(ids.shape[0]):
        tok = ids[b][mask[b]]
        n = len(tok)
        if shuffle and n > 1:
            tok = tok[torch.randperm(n, generator=generator, device="cpu").to(tok.device)]
        hide = torch.zeros(n, dtype=torch.bool)
        k = round(ratio * n)
        if k:
            hide[torch.randperm(n, generator=generator, device="cpu")[:k]] = True
        out, prev = [], False
        for t, h in zip(tok.tolist(), hide.tolist()):
            if h and prev:
                continue  # a run of masked tokens is one <mask>
            out.append(mask_id if h else t)
            prev = h
        rows.append(out or [mask_id])
    width = max(map(len, rows))
    out_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    out_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):
        out_ids[b, : len(r)] = torch.tensor(r)
        out_mask[b, : len(r)] = True
    return out_ids.to(ids.device), out_mask.to(ids.device)


class VideoTranslate(nn.Module):
    """batch: "prefix_ids" [B, P] + "prefix_mask"; "feats" [B, T, Dv] + "mask" [B, T]; generative training also
    "target_ids" [B, L] (ending in </s>, pad_id after) + "target_mask" [B, L].
    returns: generative {"logits" [B, L, V]}; discriminative {"class_logits": [[B, C_k]] per label set}."""

    def __init__(self, cfg: Config):
        super().__init__()
        from transformers import T5Config, T5ForConditionalGeneration

        if cfg.mode not in ("generative", "discriminative"):
            raise ValueError(f"mode must be 'generative' or 'discriminative', got {cfg.mode!r}")
        lo, hi = cfg.mask_ratio
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"mask_ratio {cfg.mask_ratio} must satisfy 0 <= lo <= hi <= 1")
        if cfg.disc_pool not in ("mean", "token"):
            raise ValueError(f"disc_pool must be 'mean' or 'token', got {cfg.disc_pool!r}")
        if cfg.fusion not in ("auto", "gen", "disc", "gen+disc"):
            raise ValueError(f"fusion must be 'auto', 'gen', 'disc' or 'gen+disc', got {cfg.fusion!r}")
        if fusion_of(cfg) != "gen" and cfg.mode != "discriminative":
            raise ValueError(f"fusion={cfg.fusion} needs mode=discriminative (the linear layers)")
        self.cfg = cfg
        t5cfg = T5Config(vocab_size=cfg.vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv, d_ff=cfg.d_ff,
                         num_layers=cfg.num_layers, num_decoder_layers=cfg.num_decoder_layers,
                         num_heads=cfg.num_heads, dropout_rate=cfg.dropout, feed_forward_proj=cfg.feed_forward_proj,
                         tie_word_embeddings=cfg.tie_word_embeddings,
                         pad_token_id=cfg.pad_id, eos_token_id=cfg.eos_id, decoder_start_token_id=cfg.pad_id)
        self.t5 = T5ForConditionalGeneration(t5cfg)
        self.video_proj = nn.Linear(cfg.video_dim, cfg.d_model)  # video features -> the text embedding width
        self.classifiers = nn.ModuleList(nn.Linear(cfg.d_model, c) for c in cfg.num_classes)
        self.fused = cfg.mode == "discriminative" and cfg.fusion == "gen+disc"  # trains decoder and layers
        if cfg.disc_pool == "token":  # made last: a "mean" network's init (and old runs' weights) stay the same
            self.disc_token = nn.Parameter(torch.randn(cfg.d_model))  # the scale of T5's own embedding init

    def source(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's text part: noisy target tokens when training generatively, else one ``<mask>``."""
        cfg, b = self.cfg, batch["feats"].shape[0]
        if self.training and (cfg.mode == "generative" or self.fused) and "target_ids" in batch:
            text = batch["target_mask"] & (batch["target_ids"] != cfg.eos_id)
            ratio = float(torch.empty(()).uniform_(*cfg.mask_ratio)) if cfg.mask_ratio[1] > cfg.mask_ratio[0] \
                else cfg.mask_ratio[0]
            return noise_tokens(batch["target_ids"], text, ratio, cfg.mask_id, cfg.pad_id, cfg.shuffle)
        dev = batch["feats"].device
        return (torch.full((b, 1), cfg.mask_id, dtype=torch.long, device=dev),
                torch.ones((b, 1), dtype=torch.bool, device=dev))

    def encode(self, batch: dict, with_text: bool = True, token: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states ``[B, (1 +) P + T (+ S), D]`` and their mask of ``[(disc token;) prefix; video (; text)]``."""
        embed = self.t5.get_input_embeddings()
        parts = [embed(batch["prefix_ids"]), self.video_proj(batch["feats"])]
        masks = [batch["prefix_mask"], batch["mask"]]
        if token:
            b = batch["feats"].shape[0]
            parts.insert(0, self.disc_token.to(parts[1].dtype).expand(b, 1, -1))
            masks.insert(0, torch.ones_like(batch["mask"][:, :1]))
        if with_text:
            src, src_mask = self.source(batch)
            parts.append(embed(src))
            masks.append(src_mask)
        mask = torch.cat(masks, 1)
        h = self.t5.get_encoder()(inputs_embeds=torch.cat(parts, 1), attention_mask=mask.long()).last_hidden_state
        return h, mask

    def decode_logits(self, enc: torch.Tensor, enc_mask: torch.Tensor, target_ids: torch.Tensor,
                      target_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, L, V]`` of targets ``[B, L]`` given encoder states ``[B, S, D]``."""
        from transformers.modeling_outputs import BaseModelOutput

        dec_in = self.t5.prepare_decoder_input_ids_from_labels(labels=target_ids.masked_fill(~target_mask, -100))
        dec_mask = torch.cat([torch.ones_like(target_mask[:, :1]), target_mask[:, :-1]], 1)
        return self.t5(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=enc_mask.long(),
                       decoder_input_ids=dec_in, decoder_attention_mask=dec_mask.long()).logits

    def pooled(self, batch: dict) -> torch.Tensor:
        """What the linear layers read -> ``[B, D]``: the masked mean of the encoder output over ``[prefix; video]``
        (``disc_pool="mean"``) or the output at the learned token in front of them (``"token"``)."""
        if self.cfg.disc_pool == "token":
            return self.encode(batch, with_text=False, token=True)[0][:, 0]
        h, m = self.encode(batch, with_text=False)
        m = m.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, batch: dict) -> dict:
        out = {}
        if self.cfg.mode == "discriminative":
            p = self.pooled(batch)
            out["class_logits"] = [c(p) for c in self.classifiers]
            if not (self.fused and self.training and "target_ids" in batch):
                return out
        enc, enc_mask = self.encode(batch)
        out["logits"] = self.decode_logits(enc, enc_mask, batch["target_ids"], batch["target_mask"])
        return out

    @torch.no_grad()
    def generate(self, batch: dict, max_len: int, num_beams: int = 1) -> torch.Tensor:
        """Token ids ``[B, <= max_len]`` written for each clip (greedy, or beam search when num_beams > 1)."""
        from transformers.modeling_outputs import BaseModelOutput

        enc, enc_mask = self.encode(batch)
        out = self.t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=enc_mask.long(),
                               max_new_tokens=max_len, num_beams=num_beams, do_sample=False,
                               early_stopping=num_beams > 1)
        return out[:, 1:]  # drop the decoder start token


class Criterion(nn.Module):
    """Generative: token cross-entropy over the target (padding ignored). Discriminative: BCE (multi-label) or
    the sum of the CE of every label set; batch "labels" [B, C] float or "class_targets" [B, K] long.
    ``fusion="gen+disc"`` training: the sum of both (``gen`` and ``disc`` are logged)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg

    def forward(self, out: dict, batch: dict) -> dict:
        if "logits" in out and "class_logits" in out:
            gen, disc = self.generative(out, batch), self.discriminative(out, batch)
            return {**disc, "loss": gen["loss"] + disc["loss"], "gen": gen["loss"], "disc": disc["loss"]}
        if "logits" in out:
            return self.generative(out, batch)
        return self.discriminative(out, batch)

    def generative(self, out: dict, batch: dict) -> dict:
        tgt = batch["target_ids"].masked_fill(~batch["target_mask"], -100)
        return {"loss": F.cross_entropy(out["logits"].flatten(0, 1), tgt.flatten(), ignore_index=-100)}

    def discriminative(self, out: dict, batch: dict) -> dict:
        if self.cfg.multilabel:
            return {"loss": F.binary_cross_entropy_with_logits(out["class_logits"][0], batch["labels"])}
        losses = {f"ce_{k}": F.cross_entropy(lg, batch["class_targets"][:, k])
                  for k, lg in enumerate(out["class_logits"])}
        return {"loss": sum(losses.values()), **losses}


class Decode:
    """Turns generated ids into text with the run's tokenizer (loaded on first use from ``cfg.tokenizer``)."""

    def __init__(self, cfg: Config):
        self.cfg, self._tok = cfg, None

    @property
    def tokenizer(self):
        if self._tok is None:
            from egoflow.heads.translate.text import load_tokenizer
            self._tok = load_tokenizer(self.cfg.tokenizer)
        return self._tok

    def texts(self, ids: torch.Tensor) -> list[str]:
        return [s.strip() for s in self.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)]

    def __call__(self, out: dict, batch: dict):
        return out


def build(cfg: Config):
    """``(model, criterion, decode)`` of a config (DETR style)."""
    if cfg.mode == "discriminative" and not cfg.num_classes:
        raise ValueError("discriminative mode needs num_classes (classes per label set)")
    return VideoTranslate(cfg), Criterion(cfg), Decode(cfg)
