"""Synthetic untrimmed videos made of scene segments with known concepts, encoded with PyAV.

Each concept has its own look - two-colour gradient, stripe texture with its own frequency and angle, a moving
shape of its own kind and colour - plus a little noise so it is not trivially compressible. Even a randomly
initialised CLIP maps the concepts to different features. Time not covered by a segment shows a neutral
grey "background" scene. Frames are drawn in display orientation; `rotation` stores them the way a phone
does (coded picture turned, display matrix says how to turn it back).

`make_dataset` writes several such videos plus their annotations in the real Ego4D NLQ / MQ / narration
formats (the JSON builders live in `annotations.py`).
"""
from __future__ import annotations

import fractions
import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Concept:
    name: str  # object phrase used in queries and narrations, e.g. "red kettle"
    verb: str  # narration verb, e.g. "picks up"
    activity: str  # Ego4D-MQ-style activity label tied to the concept
    colors: tuple  # ((r, g, b) gradient start, (r, g, b) gradient end, (r, g, b) shape colour)
    shape: str  # "disc" | "square" | "ring" | "cross" | "bar" | "diamond"


CONCEPTS: tuple[Concept, ...] = (
    Concept("red kettle", "picks up", "boil_water_in_kettle", ((150, 20, 20), (240, 90, 60), (250, 240, 230)), "disc"),
    Concept("green cutting board", "cuts vegetables on", "cut_/_chop_/_slice_a_vegetable,_fruit,_or_meat",
            ((20, 110, 30), (120, 200, 80), (240, 230, 90)), "square"),
    Concept("blue mug", "washes", "wash_dishes_/_utensils_/_bakeware_etc.", ((20, 40, 150), (80, 160, 240),
                                                                             (250, 250, 250)), "ring"),
    Concept("yellow phone", "scrolls on", "use_phone", ((200, 170, 20), (250, 240, 120), (30, 30, 30)), "bar"),
    Concept("purple book", "reads", "read_a_book_/_magazine_/_shopping_list_etc.",
            ((90, 20, 120), (190, 110, 220), (250, 200, 40)), "cross"),
    Concept("orange basket", "carries", "put_away_(or_take_out)_food_items_in_the_fridge",
            ((190, 90, 10), (250, 170, 70), (20, 80, 160)), "diamond"),
)
BACKGROUND = Concept("background", "looks around", "background", ((90, 90, 90), (140, 140, 140), (110, 110, 110)),
                     "square")


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the video
    end: float
    concept: str  # Concept.name


@dataclass
class SyntheticVideo:
    path: Path  # the encoded file
    segments: list  # [Segment], the ground truth
    frame_times: np.ndarray  # float64 [N] presentation time of every encoded frame (seconds, first = 0)
    duration_s: float  # end of the last frame
    size: tuple  # (W, H) display size
    rotation: int  # clockwise display rotation in degrees


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def _to_yuv(rgb: np.ndarray):
    """uint8 RGB [H, W, 3] (even H, W) -> planes Y [H, W], U [H/2, W/2], V [H/2, W/2] (BT.601, like FFmpeg)."""
    h, w = rgb.shape[:2]
    a = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p").to_ndarray()
    return _planes(a.reshape(-1), h, w)


def _planes(flat: np.ndarray, h: int, w: int):
    """Views of Y, U, V in PyAV's flat yuv420p layout: H*W luma, then H*W/4 of each chroma plane."""
    n = h * w
    return (flat[:n].reshape(h, w), flat[n:n * 5 // 4].reshape(h // 2, w // 2),
            flat[n * 5 // 4:].reshape(h // 2, w // 2))


class _Look:
    """Pre-rendered appearance of one concept at one size, kept in YUV 4:2:0 so that drawing a frame is a
    slice, a paste and an add - no per-frame colour conversion (that would cost more than the encoding)."""

    def __init__(self, concept: Concept, width: int, height: int, seed: int, noise: int = 9):
        rng = np.random.default_rng(_seed(concept.name, seed))
        c0, c1, fg = (np.array(c, np.float32) for c in concept.colors)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0, np.pi)
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / max(width, height)
        grad = c0 + (c1 - c0) * ((u - u.min()) / (np.ptp(u) + 1e-6))[..., None]
        freq = rng.uniform(3, 9) * 2 * np.pi / max(width, height)
        stripes = 18 * np.sin(freq * (xx * np.sin(angle) - yy * np.cos(angle)))[..., None]
        bg = np.clip(grad + stripes, 0, 255).astype(np.uint8)
        # twice as wide so that a horizontal pan is a slice, not a copy of the texture
        self.y, self.u, self.v = _to_yuv(np.concatenate([bg, bg], axis=1))
        self.y = np.minimum(self.y, 255 - noise)  # room for the noise without wrapping
        self.pan = rng.uniform(0.5, 2.0) * width / 10  # pixels per second
        r = max(min(width, height) // 7, 2)  # sprite box is 2r x 2r, placed at even pixels
        yy, xx = np.mgrid[-r:r, -r:r] + 0.5
        d = np.hypot(yy, xx)
        masks = {"disc": d <= r, "ring": (d <= r) & (d >= r * 0.55), "square": np.ones_like(d, bool),
                 "cross": (abs(yy) < r / 3) | (abs(xx) < r / 3), "bar": abs(yy) < r / 2.5,
                 "diamond": abs(yy) + abs(xx) <= r}
        self.mask, self.r = masks[concept.shape], r
        self.cmask = self.mask[::2, ::2]
        self.fg = [p[0, 0] for p in _to_yuv(np.broadcast_to(fg.astype(np.uint8), (2, 2, 3)))]
        self.orbit = rng.uniform(0.3, 1.2, size=2), rng.uniform(0, 2 * np.pi, size=2)
        # sensor-like noise that never repeats exactly: a per-frame window into a larger noise field
        self.noise = rng.integers(0, noise, size=(height + 61, width + 67), dtype=np.uint8)
        self.size = height, width

    def draw(self, t: float, frame_index: int):
        """(Y [H, W], U [H/2, W/2], V [H/2, W/2]) uint8 planes of the frame at time t, display orientation."""
        h, w = self.size
        x0 = (int(t * self.pan) % w) & ~1
        ny, nx = (frame_index * 37) % 61, (frame_index * 53) % 67
        y = self.y[:, x0:x0 + w] + self.noise[ny:ny + h, nx:nx + w]
        u, v = self.u[:, x0 // 2:(x0 + w) // 2].copy(), self.v[:, x0 // 2:(x0 + w) // 2].copy()
        (fx, fy), (px, py) = self.orbit
        r = self.r
        cx = int((0.5 + 0.3 * np.sin(fx * t + px)) * (w - 2 * r)) & ~1
        cy = int((0.5 + 0.3 * np.sin(fy * t + py)) * (h - 2 * r)) & ~1
        y[cy:cy + 2 * r, cx:cx + 2 * r][self.mask] = self.fg[0]
        u[cy // 2:cy // 2 + r, cx // 2:cx // 2 + r][self.cmask] = self.fg[1]
        v[cy // 2:cy // 2 + r, cx // 2:cx // 2 + r][self.cmask] = self.fg[2]
        return y, u, v


def frame_times(duration_s: float, fps: float, vfr: bool, seed: int) -> np.ndarray:
    """Presentation times (seconds) of the frames to encode; VFR draws each gap from 0.5-1.5 frame periods."""
    if not vfr:
        return np.arange(int(round(duration_s * fps))) / fps
    rng = np.random.default_rng(_seed("vfr", seed))
    gaps = rng.choice([0.5, 1.0, 1.5], size=int(duration_s * fps * 2) + 2) / fps
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    return t[t < duration_s - 1e-9]


def make_video(path, segments, fps=30, size=(320, 240), gop_s: float = 8.0, codec: str = "libx264", seed: int = 0,
               rotation: int = 0, vfr: bool = False, noise: int = 9) -> SyntheticVideo:
    """Encode an untrimmed video of `segments` ([(start, end, concept_name)] or [Segment]) to `path`.

    The video lasts until the last segment ends. fps may be a Fraction (e.g. Fraction(30000, 1001)); size is
    the display (W, H); rotation is the clockwise display rotation a phone would record (0/90/180/270).
    noise: luma noise amplitude; x264 smooths 9 away (tiny files), 12 gives ~1.6 Mbit/s at 640x480 - a
    realistic decode cost (see make_benchmark_video).
    """
    segs = [s if isinstance(s, Segment) else Segment(float(s[0]), float(s[1]), str(s[2])) for s in segments]
    segs.sort(key=lambda s: (s.start, s.concept != BACKGROUND.name))  # equal starts: the concept wins
    if not segs or segs[-1].end <= 0:
        raise ValueError("make_video needs at least one segment with end > 0")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90, got {rotation}")
    W, H = size
    if W % 2 or H % 2 or W < 8 or H < 8:
        raise ValueError(f"size must be even and at least 8x8 (yuv420p), got {size}")
    rate = fractions.Fraction(fps).limit_denominator(100000)
    duration = max(s.end for s in segs)
    times = frame_times(duration, float(rate), vfr, seed)
    tb = fractions.Fraction(1, 90000) if vfr else 1 / rate
    if vfr:  # snap to the time base so frame_times are exactly what a reader sees
        pts = np.unique(np.round(times * tb.denominator / tb.numerator).astype(np.int64))
        times = pts * tb.numerator / tb.denominator
    else:
        pts = np.arange(len(times))
    by_name = {c.name: c for c in CONCEPTS}
    looks: dict[str, _Look] = {}
    k = (rotation // 90) % 4
    cw, ch = (H, W) if k % 2 else (W, H)  # coded size

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w")
    try:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = cw, ch, "yuv420p"
        gop = max(int(round(gop_s * float(rate))), 1)
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        if vfr:
            stream.codec_context.time_base = tb
            stream.time_base = tb
        if k:
            stream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        for i, (t, p) in enumerate(zip(times, pts)):
            # the latest-starting segment containing t wins, so a long "background" segment can underlie all
            seg = next((s for s in reversed(segs) if s.start <= t < s.end), None)
            concept = by_name.get(seg.concept, BACKGROUND) if seg else BACKGROUND
            if concept.name not in looks:
                looks[concept.name] = _Look(concept, W, H, seed, noise)
            planes = looks[concept.name].draw(float(t), i)
            if k:
                planes = [np.rot90(p, k=k) for p in planes]  # stored turned; the display turns it back
            buf = np.empty(ch * cw * 3 // 2, np.uint8)
            for dst, src in zip(_planes(buf, ch, cw), planes):
                dst[:] = src
            frame = av.VideoFrame.from_ndarray(buf.reshape(ch * 3 // 2, cw), format="yuv420p")
            frame.pts = int(p)
            if vfr:
                frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    last_gap = times[-1] - times[-2] if len(times) > 1 else 1 / float(rate)
    return SyntheticVideo(path, segs, np.asarray(times, np.float64), float(times[-1] + last_gap), (W, H), rotation)


def make_benchmark_video(path, minutes: float = 10, size=(640, 480), fps=30, gop_s: float = 8.0,
                         noise: int = 12) -> SyntheticVideo:
    """The benchmark video: 20-40 s scenes cycling through CONCEPTS, 640x480 30 fps h264, keyframe every 8 s,
    ~1.6 Mbit/s, so decoding costs what real 480p video costs (~0.7 ms of one core per frame)."""
    seconds, segs, t, i = minutes * 60, [], 0.0, 0
    while t < seconds:
        d = min(20 + 10 * (i % 3), seconds - t)
        segs.append(Segment(t, t + d, CONCEPTS[i % len(CONCEPTS)].name))
        t, i = t + d, i + 1
    return make_video(path, segs, fps=fps, size=size, gop_s=gop_s, noise=noise)


@dataclass
class SyntheticDataset:
    root: Path  # output directory
    videos: dict  # video_uid -> Path of <video_uid>.mp4
    segments: dict  # video_uid -> [Segment] concept segments (video time; the rest is background)
    clips: list  # [SynthClip] clip extents, their segments and annotation uids
    splits: dict  # "train" / "val" -> [video_uid]
    annotations: dict  # "nlq_train", "nlq_val", "moments_train", "moments_val", "narration", "charades_train",
    #                    "charades_val", "charades_classes" -> Path
    duration_s: float  # length of every video
    fps: float  # source frame rate
    size: tuple  # (W, H)


def _plan_clip(rng, start: float, end: float, concepts) -> list[Segment]:
    """Alternate background gaps and concept segments (no concept twice per clip, so queries are unique)."""
    span, segs, t = end - start, [], start + rng.uniform(0.03, 0.1) * (end - start)
    for c in rng.sample(list(concepts), len(concepts)):
        length = rng.uniform(0.15, 0.3) * span
        if t + length > end - 0.02 * span:
            break
        segs.append(Segment(round(t, 3), round(t + length, 3), c.name))
        t += length + rng.uniform(0.03, 0.1) * span
    return segs


def make_dataset(out_dir, num_videos: int = 4, duration_s: float = 180, concepts=CONCEPTS, seed: int = 0,
                 fps=30, size=(320, 240)) -> SyntheticDataset:
    """Videos (<out_dir>/videos/<video_uid>.mp4) + Ego4D-format annotations (<out_dir>/annotations/).

    Each video is cut into clips of ~90 s (one clip when shorter than 2 minutes); each clip holds a few
    concept segments. Split by video: the last quarter (at least one when num_videos > 1) is val.
    """
    import random

    from egoflow.datasets.synthetic import annotations as ann
    from egoflow.datasets.synthetic.charades import write_video_charades

    rng = random.Random(seed)
    root = Path(out_dir)
    by_name = {c.name: c for c in concepts}
    num_clips = max(1, int(duration_s // 90))
    n_val = max(1, round(num_videos / 4)) if num_videos > 1 else 0
    videos, segments, clips, splits = {}, {}, [], {"train": [], "val": []}
    for v in range(num_videos):
        uid = ann.new_uid(rng)
        bounds = [round(duration_s * i / num_clips, 3) for i in range(num_clips + 1)]
        vclips = [ann.SynthClip(uid, ann.new_uid(rng), a, b, _plan_clip(rng, a, b, concepts), ann.new_uid(rng),
                                ann.new_uid(rng)) for a, b in zip(bounds[:-1], bounds[1:])]
        segs = [s for c in vclips for s in c.segments]
        video = make_video(root / "videos" / f"{uid}.mp4", segs + [Segment(0.0, duration_s, "background")],
                           fps=fps, size=size, seed=seed * 1000 + v)
        videos[uid], segments[uid] = video.path, segs
        clips += vclips
        splits["val" if v >= num_videos - n_val else "train"].append(uid)
    paths = {}
    for split, uids in splits.items():
        sc = [c for c in clips if c.video_uid in uids]
        paths[f"nlq_{split}"] = ann.write_json(ann.nlq_json(sc, by_name, split, rng),
                                               root / "annotations" / f"nlq_{split}.json")
        paths[f"moments_{split}"] = ann.write_json(ann.moments_json(sc, by_name, split),
                                                   root / "annotations" / f"moments_{split}.json")
    paths.update(write_video_charades(root / "annotations", splits, segments, concepts, duration_s))
    every = max(1.0, min(4.0, duration_s / 30))
    paths["narration"] = ann.write_json(ann.narration_json(clips, by_name, every, rng),
                                        root / "annotations" / "narration.json")
    return SyntheticDataset(root, videos, segments, clips, splits, paths, float(duration_s), float(fps), tuple(size))
