"""Readers for the Ego4D episodic-memory annotation files: NLQ, Moment Queries and narrations.

The files are read as released (``nlq_{train,val}.json``, ``moments_{train,val}.json``, ``narration.json``) into
the records of ``egoflow.datasets.records``. Structural and range problems (a missing key, a string where a
number belongs, a negative time, a window reversed or past its clip) raise ``AnnotationError`` naming the file and
key path. Content problems that occur in the real release
(queries without text, zero-length answer windows) are counted in ``NLQReadStats`` and dropped by default, never
silently: ``load_nlq_report`` returns the counts and ``load_nlq`` logs them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from egoflow.datasets.errors import AnnotationError, Checker, read_json
from egoflow.datasets.records import MQClip, MQInstance, Narration, NLQQuery

log = logging.getLogger(__name__)


@dataclass
class NLQReadStats:
    """What ``load_nlq_report`` saw and dropped."""

    num_entries: int = 0  # language_queries entries in the file
    num_kept: int = 0  # returned as NLQQuery records
    missing_query: int = 0  # no / empty "query" text (the Ego4D baseline skips these too)
    zero_length: int = 0  # clip_end_sec == clip_start_sec
    reversed_window: int = 0  # clip_end_sec < clip_start_sec: always 0 now (an AnnotationError), kept for callers
    dropped: list[tuple[str, str, int, str]] = field(default_factory=list)  # (clip_uid, annotation_uid, idx, why)

    def summary(self) -> str:
        return (f"{self.num_kept}/{self.num_entries} NLQ queries kept; dropped: {self.missing_query} without query "
                f"text, {self.zero_length} zero-length, {self.reversed_window} reversed windows")


def _clips(ck: Checker, data):
    """Yield (where, video_uid, clip dict, clip_uid, clip start, clip end) of an Ego4D videos -> clips file."""
    for vi, video in enumerate(ck.get(data, "videos", "", list)):
        vw = f"videos[{vi}]"
        video_uid = ck.get(video, "video_uid", vw, str)
        for ci, clip in enumerate(ck.get(video, "clips", vw, list)):
            cw = f"{vw}.clips[{ci}]"
            clip_uid = ck.get(clip, "clip_uid", cw, str)
            c0 = ck.time(ck.get(clip, "video_start_sec", cw, float), f"{cw}.video_start_sec")
            c1 = ck.time(ck.get(clip, "video_end_sec", cw, float), f"{cw}.video_end_sec")
            if c1 < c0:
                ck.fail(cw, f"clip {clip_uid} ends ({c1}) before it starts ({c0})")
            yield cw, video_uid, clip, clip_uid, c0, c1


def load_nlq_report(path, *, keep_missing_query: bool = False, keep_zero_length: bool = False
                    ) -> tuple[list[NLQQuery], NLQReadStats]:
    """Read an Ego4D NLQ file into ``NLQQuery`` records plus counts of what was dropped.

    ``query_idx`` is the index in the annotation's ``language_queries`` list *including* dropped entries, as the
    official evaluation addresses queries. A query kept with ``keep_missing_query`` has ``query == ""``.
    A window that ends before it starts, has a negative or absurd time, or ends past its clip (beyond
    ``egoflow.checks.clip_tolerance``) is an ``AnnotationError`` naming the file and key path: ``train``,
    ``evaluate`` and ``encode-text`` all refuse it, none drops it silently.
    """
    ck = Checker(path)
    stats = NLQReadStats()
    out: list[NLQQuery] = []
    for cw, video_uid, clip, clip_uid, c0, c1 in _clips(ck, read_json(path)):
        for ai, ann in enumerate(ck.get(clip, "annotations", cw, list, optional=True, default=[])):
            aw = f"{cw}.annotations[{ai}]"
            ann_uid = ck.get(ann, "annotation_uid", aw, str)
            for qi, q in enumerate(ck.get(ann, "language_queries", aw, list)):
                qw = f"{aw}.language_queries[{qi}]"
                stats.num_entries += 1
                s = ck.time(ck.get(q, "clip_start_sec", qw, float), f"{qw}.clip_start_sec")
                e = ck.time(ck.get(q, "clip_end_sec", qw, float), f"{qw}.clip_end_sec")
                ck.window(s, e, qw, c1 - c0)
                text = q.get("query") if isinstance(q, dict) else None
                if text is not None and not isinstance(text, str):
                    ck.fail(f"{qw}.query", f"expected a string, got {text!r}")
                text = (text or "").strip()
                why = None  # counted independently: an entry can lack text and have a zero-length window
                if not text:
                    stats.missing_query += 1
                    why = None if keep_missing_query else "missing query"
                if e == s:
                    stats.zero_length += 1
                    why = why or (None if keep_zero_length else "zero-length window")
                if why is not None:
                    stats.dropped.append((clip_uid, ann_uid, qi, why))
                    continue
                template = q.get("template")
                out.append(NLQQuery(video_uid=video_uid, clip_uid=clip_uid, annotation_uid=ann_uid,
                                    query_idx=qi, query=text, clip_video_start_sec=c0, clip_video_end_sec=c1,
                                    start_sec=s, end_sec=e,
                                    template=template if isinstance(template, str) else None))
    stats.num_kept = len(out)
    return out, stats


def load_nlq(path, **kwargs) -> list[NLQQuery]:
    """``load_nlq_report`` without the counts (they are logged at INFO, at WARNING when anything was dropped)."""
    queries, stats = load_nlq_report(path, **kwargs)
    (log.warning if stats.dropped else log.info)("%s: %s", path, stats.summary())
    return queries


def load_mq(path) -> list[MQClip]:
    """Read an Ego4D Moment Queries file into one ``MQClip`` per clip_uid, with every labelled instance.

    Instances keep their ``primary`` flag; evaluation uses primary instances only, as the official conversion
    script does. A clip listed twice (several annotation passes) gets the union of its instances. Clips of the
    unannotated test file come back with no instances.
    """
    ck = Checker(path)
    clips: dict[str, MQClip] = {}
    for cw, video_uid, clip, clip_uid, c0, c1 in _clips(ck, read_json(path)):
        rec = clips.setdefault(clip_uid, MQClip(video_uid, clip_uid, c0, c1))
        if rec.video_uid != video_uid:
            ck.fail(cw, f"clip {clip_uid} listed under two videos ({rec.video_uid}, {video_uid})")
        for ai, ann in enumerate(ck.get(clip, "annotations", cw, list, optional=True, default=[])):
            aw = f"{cw}.annotations[{ai}]"
            for li, lab in enumerate(ck.get(ann, "labels", aw, list)):
                lw = f"{aw}.labels[{li}]"
                label = ck.get(lab, "label", lw, str)
                s = ck.time(ck.get(lab, "start_time", lw, float), f"{lw}.start_time")
                e = ck.time(ck.get(lab, "end_time", lw, float), f"{lw}.end_time")
                ck.window(s, e, lw, c1 - c0)
                primary = ck.get(lab, "primary", lw, bool, optional=True, default=True)
                rec.instances.append(MQInstance(label, s, e, primary))
    return list(clips.values())


def mq_label_vocabulary(clips: list[MQClip], primary_only: bool = False) -> list[str]:
    """Sorted list of the moment labels used by ``clips`` (index = class id for the heads)."""
    return sorted({i.label for c in clips for i in c.instances if i.primary or not primary_only})


def load_narrations(path, passes: tuple[str, ...] = ("narration_pass_1", "narration_pass_2"),
                    video_uids=None) -> list[Narration]:
    """Read Ego4D ``narration.json`` into ``Narration`` records, sorted by (video_uid, pass, time).

    Videos without narrations (the release marks some with a status instead of passes) are skipped; a pass
    present but malformed is an error. ``video_uids`` restricts reading to those videos.
    """
    ck = Checker(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, "(top level)", "expected an object keyed by video_uid")
    wanted = set(video_uids) if video_uids is not None else None
    out: list[Narration] = []
    for video_uid, entry in data.items():
        if wanted is not None and video_uid not in wanted:
            continue
        if not isinstance(entry, dict):
            ck.fail(video_uid, f"expected an object, got {type(entry).__name__}")
        for name in passes:
            if name not in entry:
                continue
            pw = f"{video_uid}.{name}"
            for ni, n in enumerate(ck.get(entry, name, video_uid, dict).get("narrations") or []):
                nw = f"{pw}.narrations[{ni}]"
                t = ck.time(ck.get(n, "timestamp_sec", nw, float), f"{nw}.timestamp_sec")
                text = ck.get(n, "narration_text", nw, str)
                out.append(Narration(video_uid, t, text, name))
    out.sort(key=lambda r: (r.video_uid, r.pass_name, r.time_sec))
    return out
