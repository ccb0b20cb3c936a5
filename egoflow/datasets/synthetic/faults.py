"""Broken and tricky video files for tests and the demo: every bad input the extractor must survive.

Bad: corrupt (index garbled), truncated (file cut in half; the frames before the cut decode), truncated_index
(cut before the index at the end of the file: nothing opens), zero_byte, not_video (a text file named .mp4),
audio_only, one_frame, missing (a path that does not exist), unreadable (chmod 000 - note root can still
read it; `unreadable_is_enforced()` says whether this process is really locked out).
Good special cases: ntsc_2997 (30000/1001 fps), vfr (variable frame rate), rotated_90 (phone video: coded
landscape, display matrix turns it to portrait).
"""
from __future__ import annotations

import fractions
import os
from pathlib import Path

import av
import numpy as np

from egoflow.datasets.synthetic.videos import make_video

SIZE = (96, 64)  # (W, H) tiny, so the whole set takes well under a second to make
BAD = ("corrupt", "truncated", "truncated_index", "zero_byte", "not_video", "audio_only", "one_frame", "missing",
       "unreadable")
GOOD = ("ntsc_2997", "vfr", "rotated_90")


def _faststart_video(path: Path, seconds: float = 3.0) -> Path:
    """A video with its index (moov) at the front, like files prepared for streaming."""
    container = av.open(str(path), "w", options={"movflags": "faststart"})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    stream.options = {"preset": "ultrafast", "g": "15"}
    rng = np.random.default_rng(0)
    for i in range(int(seconds * 30)):
        img = rng.integers(0, 40, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)  # noise: real bytes per frame
        img[8:24, (2 * i) % 70:(2 * i) % 70 + 16] = (250, 40, 40)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        _mux(container, stream, frame)
    return _finish(container, stream, path)


def _audio_only(path: Path) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=16000)
    t = np.arange(16000 * 2) / 16000
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for i in range(0, len(samples), 1024):
        chunk = samples[i:i + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, i
        _mux(container, stream, frame)
    return _finish(container, stream, path)


def _mux(container, stream, frame) -> None:
    for packet in stream.encode(frame):
        container.mux(packet)


def _finish(container, stream, path: Path) -> Path:
    """Flush the encoder's delayed packets and close the file."""
    _mux(container, stream, None)
    container.close()
    return path


def _moov_offset(data: bytes) -> int:
    """Byte offset of the top-level 'moov' box (mp4 boxes: 4-byte big-endian size, 4-byte type)."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        if kind == b"moov":
            return pos
        if size < 8:
            break
        pos += size
    raise ValueError("no moov box")


def make_fault_files(directory) -> dict[str, Path]:
    """Write every case into `directory`; returns name -> path (see module docstring for the names)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    good = _faststart_video(d / "_good_faststart.mp4")
    data = good.read_bytes()
    moov = _moov_offset(data)
    rng = np.random.default_rng(1)
    garbled = bytearray(data)
    # overwrite the whole index (and the box header) with noise: the sample table is gone
    garbled[moov:moov + 400] = rng.integers(0, 256, size=400, dtype=np.uint8).tobytes()
    (d / "corrupt.mp4").write_bytes(bytes(garbled))
    files["corrupt"] = d / "corrupt.mp4"
    (d / "truncated.mp4").write_bytes(data[:len(data) // 2])
    files["truncated"] = d / "truncated.mp4"

    plain = make_video(d / "_good_plain.mp4", [(0, 2, "red kettle")], fps=30, size=SIZE).path
    raw = plain.read_bytes()
    (d / "truncated_index.mp4").write_bytes(raw[:len(raw) * 2 // 3])  # index is at the end: cut off
    files["truncated_index"] = d / "truncated_index.mp4"

    (d / "zero_byte.mp4").write_bytes(b"")
    files["zero_byte"] = d / "zero_byte.mp4"
    (d / "not_video.mp4").write_text("this is a text file, not a video\n" * 20)
    files["not_video"] = d / "not_video.mp4"
    files["audio_only"] = _audio_only(d / "audio_only.m4a")
    files["one_frame"] = make_video(d / "one_frame.mp4", [(0, 1 / 30, "blue mug")], fps=30, size=SIZE).path
    files["missing"] = d / "missing.mp4"
    if files["missing"].exists():
        files["missing"].unlink()
    unreadable = d / "unreadable.mp4"
    if unreadable.exists():
        unreadable.chmod(0o644)
    unreadable.write_bytes(raw)
    unreadable.chmod(0o000)
    files["unreadable"] = unreadable

    files["ntsc_2997"] = make_video(d / "ntsc_2997.mp4", [(0, 3, "red kettle"), (3, 4, "blue mug")],
                                    fps=fractions.Fraction(30000, 1001), size=SIZE).path
    files["vfr"] = make_video(d / "vfr.mp4", [(0, 2, "green cutting board"), (2, 4, "yellow phone")], fps=30,
                              size=SIZE, vfr=True).path
    files["rotated_90"] = make_video(d / "rotated_90.mp4", [(0, 2, "purple book")], fps=30, size=(64, 96),
                                     rotation=90).path
    return files


def unreadable_is_enforced(path) -> bool:
    """False when this process can read a chmod-000 file anyway (root, some container file systems)."""
    return not os.access(path, os.R_OK)
