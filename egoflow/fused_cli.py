"""The fused backbone where it joins annotations and videos: its zero-shot scorer and its cost report.

``FusedScorer`` is the scorer the zero-shot registry entries accept (``egoflow predict egomcq|ek100-mir|charades
--encoder fused --videos DIR``): it decodes the clips from a folder of videos and scores them with the fused
model. The CLI builds it and passes it down as the ``scorer`` option, so the prediction goes through
``egoflow.heads.runner`` like every head (heads never import ``egoflow.extract``).

    egoflow predict egomcq --annotations egomcq.json --videos DIR --out pred.json --encoder fused \
        --model egovlpv2-base --pretrained EgoVLPv2.pth --tokenizer roberta-base/ [--score ensemble]
    egoflow evaluate egomcq --pred pred.json --gt egomcq.json --out report/
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egoflow.extract.discover import VIDEO_EXTENSIONS
from egoflow.extract.fused.scoring import SCORES, clip_frames, pair_scores, similarity_matrix
from egoflow.extract.reference import clips_by_rule
from egoflow.extract.video import probe


def _clips(path, spans, encoder, fps: float) -> list[np.ndarray]:
    """Frames of each (start, end) span: the recipe's reference rule when the encoder has one (the references'
    frame indices, pre-resize to height 256), else F centres of equal parts decoded at ``fps``."""
    rule = getattr(encoder.cfg, "frame_rule", "")
    if rule:
        return clips_by_rule(path, spans, rule, encoder.cfg.num_frames, encoder.cfg.pre_resize)
    return clip_frames(path, spans, encoder.cfg.num_frames, fps, encoder.image_size)


class FusedScorer:
    """A zero-shot scorer (``egoflow.heads.zeroshot.Scorer``) over the videos of ``videos_dir``
    (``<video_uid>.<ext>``, any extension the extractor reads), each decoded once per call.

    ``score``: dual (cosine), vtm (fusion P(match)) or ensemble (their sum); default ensemble for pairs (EgoMCQ)
    and dual for matrices (EK-100 MIR, CharadesEgo: vtm runs the fused model on every pair). ``pairs`` leaves
    clips of absent videos NaN (listed on stderr); ``matrix`` refuses them."""

    def __init__(self, videos_dir, encoder, score: str | None = None, fps: float = 8.0, progress: bool = True):
        if score is not None and score not in SCORES:
            raise ValueError(f"unknown --score {score!r}: use one of {', '.join(SCORES)}")
        vdir = Path(videos_dir)
        if not vdir.is_dir():
            raise FileNotFoundError(f"videos folder {vdir} does not exist")
        self.vdir, self.encoder, self.score, self.fps, self.progress = vdir, encoder, score, fps, progress
        self.files = {p.stem: p for p in vdir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}

    def _frames(self, clips) -> dict[int, np.ndarray]:
        """uint8 ``[F, H, W, 3]`` of every clip whose video is here, by clip index."""
        by_video = defaultdict(list)
        for i, c in enumerate(clips):
            if c.video_uid in self.files:
                by_video[c.video_uid].append(i)
        out = {}
        for uid in tqdm(sorted(by_video), desc="videos", disable=not self.progress):
            idx, path = by_video[uid], self.files[uid]
            whole = float(probe(path).duration_s) if any(clips[i].start is None for i in idx) else 0.0
            spans = [(0.0, whole) if clips[i].start is None else (clips[i].start, clips[i].end) for i in idx]
            out.update(zip(idx, _clips(path, spans, self.encoder, self.fps)))
        return out

    def pairs(self, clips, texts) -> np.ndarray:
        score = self.score or "ensemble"
        if score != "dual" and getattr(self.encoder.model, "dual_only", False):
            self.encoder.model.forward_fused()  # refuses in one line, before decoding: a dual encoder has no VTM
        frames = self._frames(clips)
        missing = sorted({c.video_uid for c in clips} - set(self.files))
        if missing:
            print(f"{len(missing)} video(s) not in {self.vdir} (their clips are not scored), e.g. {missing[0]}",
                  file=sys.stderr)
        out, idx, bs = np.full(len(clips), np.nan), sorted(frames), self.encoder.cfg.batch_size
        for k in range(0, len(idx), bs):
            part = idx[k:k + bs]
            s = pair_scores(self.encoder, np.stack([frames[i] for i in part]), [texts[i] for i in part], score)
            out[part] = s[score]
        return out

    def matrix(self, clips, texts) -> np.ndarray:
        absent = sorted({c.video_uid for c in clips} - set(self.files))
        if absent:
            raise FileNotFoundError(f"{len(absent)} video(s) not in {self.vdir}, e.g. {absent[0]}")
        frames = self._frames(clips)
        clips_arr = np.stack([frames[i] for i in range(len(clips))])
        return similarity_matrix(self.encoder, clips_arr, list(texts), self.score or "dual").T  # [clips, texts]


def fused_scorer(a, make_encoder) -> FusedScorer:
    """The scorer of ``egoflow predict NAME --encoder fused``; ``make_encoder(a)`` builds the encoder from the CLI
    arguments (passed in by egoflow.cli)."""
    if not a.videos:
        raise ValueError(f"egoflow predict {a.head} --encoder fused scores clips of the videos: add --videos DIR "
                         "(the videos named <video_uid>.mp4)")
    if not Path(a.videos).is_dir():
        raise FileNotFoundError(f"videos folder {a.videos} does not exist")
    return FusedScorer(a.videos, make_encoder(a), a.score, a.fps or 8.0)


def cmd_info(a) -> int:
    """``egoflow info --encoder fused``: parameters and GMACs of the fused model (see extract.fused.cost)."""
    if a.encoder != "fused":
        raise ValueError("egoflow info reports the fused backbone's cost: add --encoder fused")
    from egoflow.extract.fused.cost import cost_report, format_report

    model = a.model or "egovlpv2-base"
    if model.startswith("clip-fused-"):
        raise ValueError("the cost report covers the EgoVLPv2 configs (egovlpv2-base, egovlpv2-tiny)")
    r = cost_report(model, text_len=a.text_tokens, num_frames=a.num_frames)
    print(json.dumps(r, indent=1) if a.json else format_report(r))
    return 0
