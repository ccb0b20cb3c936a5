"""What an extraction run reports: one :class:`VideoResult` per video (discovery failures included) and the
run's :class:`Summary` line. Apart from the pipeline so that discovery can report failures without a cycle."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VideoResult:
    video_uid: str
    status: str  # done | skipped | failed
    path: str
    steps: int = 0
    frames: int = 0
    duration_s: float = 0.0
    seconds: float = 0.0
    stage: str = ""
    reason: str = ""
    note: str = ""  # why a sparse decode ran fully (a codec sparse decoding cannot judge), else ""


@dataclass
class Summary:
    results: list[VideoResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def line(self) -> str:
        frames = sum(r.frames for r in self.results if r.status == "done")
        hours = sum(r.duration_s for r in self.results if r.status == "done") / 3600
        rate = frames / self.seconds if self.seconds else 0.0
        rt = hours * 3600 / self.seconds if self.seconds else 0.0
        line = (f"done {self.count('done')}, skipped {self.count('skipped')}, failed {self.count('failed')} | "
                f"{hours:.3f} h of video extracted | {frames} frames at {rate:.1f} sampled frames/s "
                f"({rt:.1f}x real time) in {self.seconds:.1f} s")
        notes = [r.note for r in self.results if r.note]
        if notes:  # once per run, each reason once
            line += f" | decoded fully, not sparse: {len(notes)} video(s) ({'; '.join(dict.fromkeys(notes))})"
        return line
