"""Exact sparse decoding for the PyAV backend: decode only the frames the sampled frames depend on.

Two passes over the file. The first demuxes (no decoding): every packet's pts, keyframe flag and NAL kind
(nalu.py). From the sorted pts it runs the *same* sampling rule as the full decode (video.py: pts-centre, the
same `Sampler`, the same integer arithmetic) to know which source frame each sample takes. It then picks
the packets to feed the decoder, in decode order:

* the stream is cut into segments at random access points that need nothing before them (IDR/BLA; an HEVC
  CRA when none of its RASL pictures is needed - its RASL pictures are then skipped);
* a segment with no needed frame is skipped whole;
* in a segment with needed frames, packets after the last needed one (in decode order) are skipped, and so is
  every non-reference frame that no sample needs; everything else is fed, so every needed frame has all its
  references, decoded exactly as in a full decode;
* intra-only codecs (every frame its own random access point, e.g. MJPEG, all-intra H.264) feed only needed
  frames.

The second pass feeds those packets (skipped packets are still read from the file, which costs I/O only) and
converts the needed frames with the full path's `to_rgb`. Pixels and times are therefore bit-identical to a
full decode. The decoder output is checked against the plan (every fed packet gives its own pts, in order; a
first frame that is not the first packet is fed to confirm time 0); any surprise makes the reader finish
with a full decode from the samples already given (`SparseMismatch`). Streams the plan cannot judge (other
codecs, unreadable NAL units, packets without pts, a stream that does not start at a closed random access
point) are decoded fully and the reason is returned for the run summary.
"""
from __future__ import annotations

import fractions
import logging
from dataclasses import dataclass

import av
import numpy as np

from egoflow.extract import _pyav, nalu
from egoflow.extract.video_types import Sampler, VideoReadError

log = logging.getLogger(__name__)


class SparseMismatch(Exception):
    """The decoder did not give what the plan expected: the caller continues with a full decode."""


@dataclass
class Plan:
    pts: np.ndarray  # int64 [N] packet pts in decode order
    feed: np.ndarray  # bool [N] packets given to the decoder
    samples: dict  # pts -> (count, centre seconds) of the frames that samples take (k >= start_k)
    first_pts: int  # the stream's first presentation time (time 0)
    end_pts: int  # end of the last frame's display interval
    time_base: fractions.Fraction

    @property
    def fed(self) -> int:
        return int(self.feed.sum())


def demux(path, container, stream) -> tuple[np.ndarray, np.ndarray, list | None, str | None]:
    """(pts int64 [N], key bool [N], [PacketKind] or None, reason the stream cannot be judged or None)."""
    ctx = stream.codec_context
    family = nalu.codec_family(ctx.name)
    intra = bool(getattr(ctx.codec, "intra_only", False))
    reason = None if family or intra else f"codec {ctx.name}: frame dependencies unknown to sparse decoding"
    size = None
    if family:
        try:
            size = nalu.length_size(family, ctx.extradata)
        except nalu.NalError as e:
            reason = f"codec {ctx.name}: {e}"
    pts, key, kinds = [], [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None or packet.is_discard:
                reason = reason or "packets without a timestamp or marked discard"
            pts.append(packet.pts if packet.pts is not None else -1)
            key.append(packet.is_keyframe)
            if family and not reason:
                try:
                    # length-prefixed NAL units are walked in place; start codes need a searchable copy
                    data = memoryview(packet) if size else bytes(packet)
                    kinds.append(nalu.classify(family, data, size))
                except nalu.NalError as e:
                    reason = f"codec {ctx.name}: {e}"
    except (av.error.FFmpegError, ValueError) as e:
        raise VideoReadError(path, "decode", f"cannot read packets after {len(pts)} frames ({e})") from e
    return np.asarray(pts, np.int64), np.asarray(key, bool), (kinds if family and not reason else None), reason


def needed_frames(sorted_pts: np.ndarray, tb: fractions.Fraction, fps: float, start_k: int) -> tuple[dict, int]:
    """pts -> (count, centre) for the frames the samples k >= start_k take, and the end pts; the full decode's
    rule and arithmetic (Python ints, the same Sampler), so the choice and the times are identical."""
    num, den = tb.numerator, tb.denominator
    p = [int(x) for x in sorted_pts]
    pts0, end = p[0], p[-1] + (p[-1] - p[-2])
    sampler, skip, out = Sampler(fps), start_k, {}
    for i, start in enumerate(p):
        stop = p[i + 1] if i + 1 < len(p) else end
        count = sampler.take(((stop - pts0) * num) / den)
        if skip:
            dropped = min(skip, count)
            skip, count = skip - dropped, count - dropped
        if count:
            out[start] = (count, ((start + stop - 2 * pts0) * num) / (2 * den))
    return out, end


def choose_feed(pts: np.ndarray, needed: np.ndarray, kinds: list | None) -> np.ndarray:
    """bool [N]: which packets (decode order) to decode so that every needed one decodes exactly."""
    n = len(pts)
    if kinds is None:  # intra-only codec: each frame stands alone
        return needed.copy()
    max_tid = max(k.tid for k in kinds)
    ref = np.array([k.ref or (k.slnr and k.tid < max_tid) for k in kinds])
    start = np.array([k.closed for k in kinds])
    owner = np.full(n, -1)  # the CRA each RASL picture leads
    last_irap = -1
    for i, k in enumerate(kinds):
        if k.closed or k.cra:
            last_irap = i
        elif k.rasl:
            owner[i] = last_irap
    led = set(owner[needed & (owner >= 0)].tolist())  # CRAs with a needed RASL picture
    for i, k in enumerate(kinds):
        if k.cra and i > 0:
            start[i] = i not in led  # open GOP: a start only if none of its RASL pictures is needed
    start[0] = True
    feed = np.zeros(n, bool)
    bounds = np.append(np.flatnonzero(start), n)
    for s, e in zip(bounds[:-1], bounds[1:]):
        idx = np.flatnonzero(needed[s:e])
        if not len(idx):
            continue
        last = s + idx[-1]
        seg = slice(s, last + 1)
        feed[seg] = ref[seg] | needed[seg]
        if kinds[s].cra and s > 0:
            feed[seg] &= ~(owner[seg] == s)  # its RASL pictures need the skipped GOP before: not decodable
    return feed


def make_plan(path, container, stream, fps: float, start_k: int) -> tuple[Plan | None, str | None]:
    """The packets to decode, or (None, reason) when the stream must be decoded fully."""
    pts, key, kinds, reason = demux(path, container, stream)
    if len(pts) < 2:
        raise VideoReadError(path, "decode", f"only {len(pts)} frame(s): a still image, not a video")
    if reason:
        return None, reason
    order = np.sort(pts)
    if np.any(np.diff(order) == 0):
        return None, "repeated timestamps"
    if kinds is not None and not kinds[0].closed:
        return None, "the stream does not start at a closed random access point (IDR)"
    if kinds is None and not key.all():
        return None, "intra-only codec with non-key packets"
    tb = stream.time_base or fractions.Fraction(1, 90000)
    samples, end = needed_frames(order, tb, fps, start_k)
    needed = np.isin(pts, np.fromiter(samples, np.int64, len(samples)))
    if np.argmin(pts) != 0:  # time 0 is not the first packet (an IDR): decode it to confirm the decoder shows it
        needed[np.argmin(pts)] = True
    feed = choose_feed(pts, needed, kinds)
    return Plan(pts, feed, samples, int(order[0]), int(end), tb), None


def read(path, info, fps: float, out_hw, batch_size: int, start_k: int = 0, notes: list | None = None):
    """Yield (frames uint8 [n, H, W, 3], times float64 [n]) for samples k >= start_k, exactly as
    `_pyav.read` does, decoding only what they need. Why a stream was decoded fully goes to ``notes``."""
    container, stream = _pyav.open_video(path)
    try:
        plan, reason = make_plan(path, container, stream, fps, start_k)
    finally:
        container.close()
    if plan is None:
        log.info("%s: full decode (%s)", path, reason)
        if notes is not None:
            notes.append(reason)
        yield from _pyav.read(path, info, fps, out_hw, batch_size, start_k)
        return
    done = 0
    try:
        for batch in _decode(path, plan, info, out_hw, batch_size):
            done += len(batch[0])
            yield batch
    except SparseMismatch as e:
        log.warning("%s: sparse decoding stopped after %d samples (%s); decoding the rest fully", path, done, e)
        if notes is not None:
            notes.append(f"sparse decode fell back to full: {e}")
        yield from _pyav.read(path, info, fps, out_hw, batch_size, start_k + done)


def _decode(path, plan: Plan, info, out_hw, batch_size: int):
    container, stream = _pyav.open_video(path)
    ctx, tb = stream.codec_context, plan.time_base
    expect = iter(np.sort(plan.pts[plan.feed]).tolist())  # the decoder gives fed frames in presentation order
    H, W = out_hw
    buf = np.empty((batch_size, H, W, 3), np.uint8)
    tbuf = np.empty(batch_size, np.float64)
    n = nframes = j = 0
    last = None

    def take(frames):
        nonlocal n, nframes, last
        for frame in frames:
            want = next(expect, None)
            if frame.pts != want:
                raise SparseMismatch(f"decoder gave pts {frame.pts} where the plan expects {want}")
            nframes, last = nframes + 1, frame.pts
            count, centre = plan.samples.get(frame.pts, (0, 0.0))
            if count:
                rgb = _pyav.to_rgb(frame, out_hw, info.rotation)
                for _ in range(count):
                    buf[n], tbuf[n] = rgb, centre
                    n += 1
                    if n == batch_size:
                        yield buf[:n].copy(), tbuf[:n].copy()
                        n = 0

    try:
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if j >= len(plan.pts) or packet.pts != plan.pts[j]:
                    raise SparseMismatch(f"packet {j} changed between the two passes")
                j += 1
                if plan.feed[j - 1]:
                    yield from take(ctx.decode(packet))
            yield from take(ctx.decode(None))
        except (av.error.FFmpegError, ValueError) as e:
            t = 0.0 if last is None else float((last - plan.first_pts) * tb)
            raise VideoReadError(path, "decode", f"decoding failed after {nframes} frames at {t:.2f}s "
                                 f"(corrupt or truncated file: {e})") from e
        if next(expect, None) is not None:
            raise SparseMismatch(f"the decoder gave {nframes} of the {plan.fed} frames fed")
        _pyav.check_complete(path, float((plan.end_pts - plan.first_pts) * tb), stream, container)
        if n:
            yield buf[:n].copy(), tbuf[:n].copy()
    except VideoReadError as err:
        if n:  # hand over the good frames decoded before the failure, then fail
            yield buf[:n].copy(), tbuf[:n].copy()
        raise err
    finally:
        container.close()
