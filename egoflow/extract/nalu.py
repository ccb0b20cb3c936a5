"""Which compressed frames other frames need, read from the NAL unit headers of H.264 / HEVC packets.

Only the one- or two-byte NAL headers are read (no slice header, no entropy decoding), so this costs next to
nothing per packet. A packet is AVCC/HVCC (length-prefixed NAL units, as MP4/MOV/MKV store them; the length
size comes from the stream's extradata) or Annex-B (start codes, as raw .h264/.hevc and MPEG-TS store them).

What each kind means for skipping (see sparse.py for how the plan uses it):

* ``ref`` False: no later frame predicts from this one, so leaving it undecoded changes no other frame's
  pixels. H.264: every slice has ``nal_ref_idc == 0``. HEVC: every slice is a sub-layer non-reference type
  (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14) *and* sits in the stream's highest temporal
  sub-layer - a sub-layer non-reference picture may still be referenced by pictures of higher sub-layers.
* ``closed``: a random access point that needs nothing decoded before it and after which nothing refers back
  past it (H.264 IDR; HEVC IDR_W_RADL, IDR_N_LP, BLA_*). Decoding may start here after skipping a stretch.
* ``cra``: an HEVC clean random access picture (open GOP): trailing pictures after it need nothing before it,
  but its RASL pictures do. Decoding may start here when none of its RASL pictures is needed (they are then
  skipped too). An H.264 recovery-point I frame (x264 ``open-gop``) is *not* treated as a start point: H.264
  gives no such guarantee in the NAL header, so sparse decoding runs through it.
"""
from __future__ import annotations

from dataclasses import dataclass

H264 = "h264"
HEVC = "hevc"
_H264_VCL = {1, 2, 3, 4, 5}  # non-IDR slice, data partitions A/B/C, IDR slice
_H264_UNKNOWN = {14, 15, 20, 21}  # SVC/MVC/3D extensions: dependency rules we do not model
_HEVC_SLNR = {0, 2, 4, 6, 8, 10, 12, 14}  # sub-layer non-reference VCL types
_HEVC_CLOSED = {16, 17, 18, 19, 20}  # BLA_W_LP, BLA_W_RADL, BLA_N_LP, IDR_W_RADL, IDR_N_LP
_HEVC_CRA = 21
_HEVC_RASL = {8, 9}
_HEVC_KNOWN_VCL = set(range(0, 10)) | _HEVC_CLOSED | {_HEVC_CRA}


class NalError(ValueError):
    """A packet whose NAL units cannot be read: the stream is decoded fully instead."""


@dataclass(frozen=True)
class PacketKind:
    ref: bool  # may a later frame predict from this one (HEVC: before the highest-sub-layer rule, see module doc)
    closed: bool  # closed random access point (IDR / BLA)
    cra: bool  # HEVC clean random access point (open GOP)
    rasl: bool  # HEVC random access skipped leading picture (needs the GOP before its CRA)
    slnr: bool  # HEVC: every slice is a sub-layer non-reference type (then ref depends on tid)
    tid: int  # HEVC temporal id (0 for H.264)


def codec_family(name: str) -> str | None:
    """h264 / hevc for the FFmpeg decoder names we can judge, else None."""
    name = (name or "").lower()
    if name in ("h264", "libopenh264", "h264_cuvid"):
        return H264
    if name in ("hevc", "h265", "hevc_cuvid"):
        return HEVC
    return None


def length_size(family: str, extradata: bytes | None) -> int | None:
    """Bytes of each NAL length prefix for AVCC/HVCC streams (from avcC/hvcC extradata); None = Annex-B."""
    x = bytes(extradata or b"")
    if not x or x[0] != 1:  # Annex-B extradata starts with a start code (or is absent)
        return None
    if family == H264 and len(x) >= 7:
        return (x[4] & 3) + 1
    if family == HEVC and len(x) >= 23:
        return (x[21] & 3) + 1
    raise NalError(f"{family} extradata of {len(x)} bytes is too short for its configuration record")


def nal_headers(data: bytes | memoryview, size: int | None, hlen: int) -> list[bytes]:
    """The first ``hlen`` bytes of every NAL unit in one packet (a memoryview is read in place: length-prefixed
    only)."""
    out = []
    if size:
        i, n = 0, len(data)
        while i < n:
            if i + size > n:
                raise NalError("NAL length prefix runs past the packet")
            ln = int.from_bytes(data[i:i + size], "big")
            i += size
            if ln < hlen or i + ln > n:
                raise NalError(f"NAL unit of {ln} bytes does not fit the packet")
            out.append(bytes(data[i:i + hlen]))
            i += ln
        return out
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        out.append(data[i + 3:i + 3 + hlen])
        i = data.find(b"\x00\x00\x01", i + 3)
    return [h for h in out if len(h) == hlen]


def classify(family: str, data: bytes, size: int | None) -> PacketKind:
    """The dependency kind of one packet (one access unit = one frame); NalError when it cannot be judged."""
    if family == H264:
        ref = idr = False
        vcl = 0
        for h in nal_headers(data, size, 1):
            t, ref_idc = h[0] & 0x1F, (h[0] >> 5) & 3
            if t in _H264_UNKNOWN:
                raise NalError(f"H.264 NAL type {t} (SVC/MVC) is not supported by sparse decoding")
            if t in _H264_VCL:
                vcl += 1
                ref |= ref_idc != 0
                idr |= t == 5
        if not vcl:
            raise NalError("packet without a slice (no VCL NAL unit)")
        return PacketKind(ref=ref, closed=idr, cra=False, rasl=False, slnr=not ref, tid=0)
    types, tid = set(), 0
    for h in nal_headers(data, size, 2):
        t, layer, t_id = (h[0] >> 1) & 0x3F, ((h[0] & 1) << 5) | (h[1] >> 3), (h[1] & 7) - 1
        if t < 32:
            if t not in _HEVC_KNOWN_VCL:
                raise NalError(f"HEVC reserved VCL NAL type {t}")
            if layer:
                raise NalError("multi-layer HEVC (nuh_layer_id > 0) is not supported by sparse decoding")
            types.add(t)
            tid = max(tid, t_id)
    if not types:
        raise NalError("packet without a slice (no VCL NAL unit)")
    slnr = types <= _HEVC_SLNR
    return PacketKind(ref=not slnr, closed=bool(types & _HEVC_CLOSED), cra=_HEVC_CRA in types,
                      rasl=bool(types & _HEVC_RASL), slnr=slnr, tid=tid)
