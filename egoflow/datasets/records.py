"""Plain typed records shared by readers, synthetic generators and heads.

All times are seconds. "Clip time" is measured from the start of the clip; "video time" from the start of
the video. A clip is the window [clip_video_start_sec, clip_video_end_sec] of its video (Ego4D convention).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NLQQuery:
    """One Ego4D natural-language query and its answer window."""

    video_uid: str
    clip_uid: str
    annotation_uid: str
    query_idx: int  # index of the query inside its annotation's language_queries list
    query: str  # the question text
    clip_video_start_sec: float  # clip extent in video time
    clip_video_end_sec: float
    start_sec: float  # answer window in clip time (Ego4D's query clip_start_sec)
    end_sec: float  # (Ego4D's query clip_end_sec)
    template: str | None = None

    @property
    def clip_duration(self) -> float:
        return self.clip_video_end_sec - self.clip_video_start_sec


@dataclass(frozen=True)
class MQInstance:
    """One labelled moment inside a clip (clip time)."""

    label: str
    start_sec: float
    end_sec: float
    primary: bool = True


@dataclass
class MQClip:
    """An Ego4D Moment Queries clip with all its labelled instances."""

    video_uid: str
    clip_uid: str
    clip_video_start_sec: float
    clip_video_end_sec: float
    instances: list[MQInstance] = field(default_factory=list)

    @property
    def clip_duration(self) -> float:
        return self.clip_video_end_sec - self.clip_video_start_sec


@dataclass(frozen=True)
class Narration:
    """A timestamped Ego4D narration (video time)."""

    video_uid: str
    time_sec: float
    text: str
    pass_name: str = "narration_pass_1"
