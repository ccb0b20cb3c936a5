"""CLI pieces of the fused backbone that sit above extract and datasets: ``egoflow predict egomcq`` and
``egoflow info --encoder fused`` (cost report).

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


def _clips(path, spans, encoder, fps: float) -> list[np.ndarray]:
    """Frames of each (start, end) span: the recipe's reference rule when the encoder has one (the references'
    frame indices, pre-resize to height 256), else F centres of equal parts decoded at ``fps``."""
    from egoflow.extract.fused.scoring import clip_frames
    from egoflow.extract.reference import clips_by_rule

    rule = getattr(encoder.cfg, "frame_rule", "")
    if rule:
        return clips_by_rule(path, spans, rule, encoder.cfg.num_frames, encoder.cfg.pre_resize)
    return clip_frames(path, spans, encoder.cfg.num_frames, fps, encoder.image_size)


def predict_egomcq(annotations, videos_dir, encoder, out, score: str = "ensemble", fps: float = 8.0,
                   progress: bool = True) -> Path:
    """Score the 5 candidates of every EgoMCQ item with the fused model; write ``{item_id: [5 scores]}``.

    Videos are ``<videos_dir>/<video_uid>.mp4`` (any extension the extractor reads); each is decoded once.
    Items whose video is missing are left out (the evaluator counts them as missing) and listed on stderr.
    """
    from egoflow.datasets.egomcq import load_egomcq
    from egoflow.extract.fused.scoring import SCORES, pair_scores
    from egoflow.extract.pipeline import VIDEO_EXTENSIONS

    if score not in SCORES:
        raise ValueError(f"unknown --score {score!r}: use one of {', '.join(SCORES)}")
    items = load_egomcq(annotations)
    vdir = Path(videos_dir)
    if not vdir.is_dir():
        raise FileNotFoundError(f"videos folder {vdir} does not exist")
    files = {p.stem: p for p in vdir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
    by_video = defaultdict(list)  # video_uid -> [(item index, choice index, clip)]
    for i, it in enumerate(items):
        for c, clip in enumerate(it.choices):
            by_video[clip.video_uid].append((i, c, clip))
    scores = [[None] * len(it.choices) for it in items]
    missing = sorted(u for u in by_video if u not in files)
    for uid in tqdm(sorted(set(by_video) - set(missing)), desc="egomcq videos", disable=not progress):
        entries = by_video[uid]
        frames = _clips(files[uid], [(c.start_sec, c.end_sec) for _, _, c in entries], encoder, fps)
        for k in range(0, len(entries), encoder.cfg.batch_size):
            part = entries[k:k + encoder.cfg.batch_size]
            s = pair_scores(encoder, np.stack(frames[k:k + len(part)]), [items[i].query for i, _, _ in part])[score]
            for (i, c, _), v in zip(part, s):
                scores[i][c] = float(v)
    if missing:
        print(f"egomcq: {len(missing)} video(s) not in {vdir} (their items are left out), e.g. {missing[0]}",
              file=sys.stderr)
    result = {it.item_id: row for it, row in zip(items, scores) if all(v is not None for v in row)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    return out


def _seconds(ts: str) -> float:
    """EPIC timestamps ``HH:MM:SS.ff`` (or plain seconds) -> seconds."""
    parts = [float(x) for x in str(ts).split(":")]
    return sum(v * 60 ** (len(parts) - 1 - i) for i, v in enumerate(parts))


def predict_ek100_mir(root, videos_dir, encoder, out, split: str = "test", score: str = "dual", fps: float = 8.0,
                      progress: bool = True) -> Path:
    """EK-100 MIR similarity matrix [video segments, captions] written as the challenge's dict (``sim_mat``,
    ``vis_ids``, ``txt_ids``; ``.npz`` or pickle by the suffix of ``out``). ``vtm`` / ``ensemble`` run the fused
    model on every (segment, caption) pair: only for small splits. Videos are ``<videos_dir>/<video_id>.mp4``."""
    import os
    import pickle

    from egoflow.datasets.ek100 import load_mir
    from egoflow.datasets.errors import read_csv_rows
    from egoflow.extract.fused.scoring import similarity_matrix
    from egoflow.extract.pipeline import VIDEO_EXTENSIONS

    mir = load_mir(root, split)
    rows = read_csv_rows(os.path.join(root, f"EPIC_100_retrieval_{split}.csv"),
                         ("narration_id", "video_id", "start_timestamp", "stop_timestamp"))
    files = {p.stem: p for p in Path(videos_dir).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
    absent = sorted({r["video_id"] for r in rows} - set(files))
    if absent:
        raise FileNotFoundError(f"{len(absent)} EK-100 video(s) not in {videos_dir}, e.g. {absent[0]}")
    by_video = defaultdict(list)
    for i, r in enumerate(rows):
        by_video[r["video_id"]].append(i)
    clips: list = [None] * len(rows)
    for vid in tqdm(sorted(by_video), desc="ek100 videos", disable=not progress):
        idx = by_video[vid]
        spans = [(_seconds(rows[i]["start_timestamp"]), _seconds(rows[i]["stop_timestamp"])) for i in idx]
        for i, c in zip(idx, _clips(files[vid], spans, encoder, fps)):
            clips[i] = c
    sim = similarity_matrix(encoder, np.stack(clips), list(mir.texts), score).T  # [videos, texts]
    sub = {"sim_mat": sim, "vis_ids": [r["narration_id"] for r in rows], "txt_ids": list(mir.text_ids)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez(out, sim_mat=sim, vis_ids=np.array(sub["vis_ids"]), txt_ids=np.array(sub["txt_ids"]))
    else:
        out.write_bytes(pickle.dumps(sub))
    return out


def predict_charades(annotations, videos_dir, encoder, out, classes=None, prompt=None, score: str = "dual",
                     fps: float = 8.0, progress: bool = True) -> Path:
    """CharadesEgo zero-shot with the fused model: each whole video (the reference: 32 frames, ``charades-cv2``)
    against every prompted class name; writes ``{video_id: [C scores]}`` in the charades submission format."""
    import os

    from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
    from egoflow.extract.fused.scoring import similarity_matrix
    from egoflow.extract.pipeline import VIDEO_EXTENSIONS
    from egoflow.extract.video import probe
    from egoflow.formats import write_submission

    classes = classes or os.path.join(os.path.dirname(os.path.abspath(annotations)), "Charades_v1_classes.txt")
    names = load_charades_classes(classes)
    videos = load_charades_ego(annotations, len(names))
    files = {p.stem: p for p in Path(videos_dir).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
    absent = sorted({v.video_id for v in videos} - set(files))
    if absent:
        raise FileNotFoundError(f"{len(absent)} CharadesEgo video(s) not in {videos_dir}, e.g. {absent[0]}")
    clips = [_clips(files[v.video_id], [(0.0, probe(files[v.video_id]).duration_s)], encoder, fps)[0]
             for v in tqdm(videos, desc="charades videos", disable=not progress)]
    texts = [(prompt or "{}").format(n) for n in names]
    sim = np.concatenate([similarity_matrix(encoder, np.stack(clips[i:i + 8]), texts, score).T
                          for i in range(0, len(clips), 8)]) if clips else np.zeros((0, len(names)))
    return Path(write_submission("charades", {v.video_id: sim[i] for i, v in enumerate(videos)}, out))


def cmd_predict_charades(a, _encoder) -> int:
    """``egoflow predict charades --encoder fused --videos DIR`` (zero-shot, no store)."""
    if not a.videos:
        raise ValueError("egoflow predict charades --encoder fused needs --videos DIR (the CharadesEgo videos)")
    path = predict_charades(a.annotations, a.videos, _encoder(a), a.out, a.classes, a.prompt, a.score or "dual",
                            a.fps or 8.0)
    print(f"predictions written to {path}")
    return 0


def cmd_predict_ek100_mir(a, _encoder) -> int:
    """``_encoder(a)`` builds the encoder from the CLI arguments (passed in by egoflow.cli)."""
    if a.encoder != "fused" or not a.videos:
        raise ValueError("egoflow predict ek100-mir needs --encoder fused and --videos DIR")
    path = predict_ek100_mir(a.annotations, a.videos, _encoder(a), a.out, score=a.score or "dual", fps=a.fps or 8.0)
    print(f"similarity matrix written to {path}")
    return 0


def cmd_predict_egomcq(a, _encoder) -> int:
    """``_encoder(a)`` builds the encoder from the CLI arguments (passed in by egoflow.cli)."""
    if a.encoder != "fused":
        raise ValueError("egoflow predict egomcq scores video-text pairs with the fused model: add --encoder fused")
    if not a.videos:
        raise ValueError("egoflow predict egomcq needs --videos DIR (the Ego4D videos named <video_uid>.mp4)")
    path = predict_egomcq(a.annotations, a.videos, _encoder(a), a.out, a.score or "ensemble", a.fps or 8.0)
    print(f"predictions written to {path}")
    return 0


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


def register(sub) -> None:
    p = sub.add_parser("info", help="cost report of an encoder (fused: parameters, GMACs per window and query)")
    p.add_argument("--encoder", default="fused", choices=["fused"])
    p.add_argument("--model", default=None, help="fused model (default egovlpv2-base)")
    p.add_argument("--num-frames", type=int, default=16, help="frames per window F")
    p.add_argument("--text-tokens", type=int, default=16, help="tokens per query")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)
