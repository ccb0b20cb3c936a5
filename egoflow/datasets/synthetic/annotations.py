"""Ego4D-format annotation files (NLQ, Moment Queries, narrations) from synthetic segment ground truth.

Field names follow the released Ego4D v2 JSON files; frame numbers use Ego4D's canonical 30 fps. Times:
`clip_*` / `start_time` fields are clip time, `video_*` fields video time, all in seconds.
"""
from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CANONICAL_FPS = 30  # Ego4D frame numbers count frames of the 30 fps canonical videos


@dataclass
class SynthClip:
    video_uid: str
    clip_uid: str
    start: float  # clip extent in video time (seconds)
    end: float
    segments: list = field(default_factory=list)  # [Segment] inside the clip, video time
    annotation_uid: str = ""  # NLQ annotation uid
    annotator_uid: str = ""  # MQ annotator uid


def new_uid(rng: random.Random) -> str:
    """A uuid4-looking string, deterministic for the rng state (Ego4D uids are uuid4 strings)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _frame(t: float) -> int:
    return int(round(t * CANONICAL_FPS))


# (template, query pattern): Ego4D NLQ templates with questions a segment answers unambiguously
NLQ_TEMPLATES = (
    ("Objects: In what location did I see object X ?", "where did I see the {x}?"),
    ("Objects: Where is object X?", "where is the {x}?"),
    ("Objects: In what location did I see object X ?", "in what location did I see the {x}?"),
)


def _r(t: float) -> float:
    return round(float(t), 3)


def nlq_json(clips: list[SynthClip], concepts: dict, split: str, rng: random.Random) -> dict:
    """NLQ file: one annotation per clip, one language query per concept segment (answer = the segment)."""
    videos: dict[str, dict] = {}
    for c in clips:
        queries = []
        for seg in c.segments:
            template, pattern = NLQ_TEMPLATES[rng.randrange(len(NLQ_TEMPLATES))]
            con = concepts[seg.concept]
            queries.append({
                "clip_start_sec": _r(seg.start - c.start), "clip_end_sec": _r(seg.end - c.start),
                "video_start_sec": _r(seg.start), "video_end_sec": _r(seg.end),
                "video_start_frame": _frame(seg.start), "video_end_frame": _frame(seg.end),
                "template": template, "query": pattern.format(x=con.name),
                "slot_x": con.name, "verb_x": "[verb_not_applicable]",
                "slot_y": None, "verb_y": None, "raw_tags": [template, con.name],
            })
        _add_clip(videos, c, split, [{"language_queries": queries, "annotation_uid": c.annotation_uid}])
    return {"version": "v2", "date": "synthetic", "description": f"egoflow synthetic NLQ ({split})",
            "manifest": "", "videos": list(videos.values())}


def _add_clip(videos: dict, c, split: str, annotations: list) -> None:
    """Append clip ``c`` (Ego4D clip-level fields) with its ``annotations`` under its video."""
    v = videos.setdefault(c.video_uid, {"video_uid": c.video_uid, "split": split, "clips": []})
    v["clips"].append({
        "clip_uid": c.clip_uid, "video_start_sec": _r(c.start), "video_end_sec": _r(c.end),
        "video_start_frame": _frame(c.start), "video_end_frame": _frame(c.end),
        "clip_start_sec": 0.0, "clip_end_sec": _r(c.end - c.start),
        "clip_start_frame": 0, "clip_end_frame": _frame(c.end - c.start), "source_clip_uid": c.clip_uid,
        "annotations": annotations,
    })


def moments_json(clips: list[SynthClip], concepts: dict, split: str) -> dict:
    """Moment Queries file: each concept segment is an instance of the concept's activity label."""
    videos: dict[str, dict] = {}
    for c in clips:
        labels = [{
            "start_time": _r(s.start - c.start), "end_time": _r(s.end - c.start),
            "video_start_time": _r(s.start), "video_end_time": _r(s.end),
            "video_start_frame": _frame(s.start), "video_end_frame": _frame(s.end),
            "label": concepts[s.concept].activity, "primary": True,
        } for s in c.segments]
        # clip level uses *_sec like NLQ (the official MQ conversion script reads video_start_sec);
        # only the labels inside use *_time
        _add_clip(videos, c, split, [{"annotator_uid": c.annotator_uid, "labels": labels}])
    return {"version": "v2", "date": "synthetic", "description": f"egoflow synthetic Moment Queries ({split})",
            "manifest": "", "videos": list(videos.values())}


def narration_json(clips: list[SynthClip], concepts: dict, every_s: float, rng: random.Random) -> dict:
    """narration.json: "#C C <verb> the <object>" every `every_s` seconds inside segments, "#C C looks
    around" in between, and one summary per clip."""
    out: dict[str, dict] = {}
    for c in clips:
        entry = out.setdefault(c.video_uid, {"status": "complete", "narration_pass_1": {
            "narrations": [], "summaries": [], "annotation_uid": new_uid(rng)}})
        p = entry["narration_pass_1"]
        t = c.start + every_s / 2
        while t < c.end:
            seg = next((s for s in c.segments if s.start <= t < s.end), None)
            text = f"#C C {concepts[seg.concept].verb} the {seg.concept}" if seg else "#C C looks around the room"
            p["narrations"].append({"timestamp_sec": _r(t), "timestamp_frame": _frame(t), "narration_text": text,
                                    "annotation_uid": p["annotation_uid"]})
            t += every_s
        names = ", ".join(f"the {s.concept}" for s in c.segments) or "nothing in particular"
        p["summaries"].append({"start_sec": _r(c.start), "end_sec": _r(c.end), "start_frame": _frame(c.start),
                               "end_frame": _frame(c.end), "summary_text": f"#Summary C handles {names}.",
                               "annotation_uid": p["annotation_uid"]})
    return out


def write_json(obj, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)  # a reader never sees half a file
    return path
