"""NAL header classification (egoflow.extract.nalu) on hand-built packets."""
from __future__ import annotations

import pytest

from egoflow.extract import nalu


def avcc(*nals, size=4):
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def h264(t, ref_idc):
    return bytes([(ref_idc << 5) | t, 0x88, 0x84])


def hevc(t, tid=0, layer=0):
    return bytes([(t << 1) | (layer >> 5), ((layer & 31) << 3) | (tid + 1), 0xAF, 0x01])


def test_h264_reference_and_idr():
    sei = h264(6, 0)
    assert not nalu.classify("h264", avcc(sei, h264(1, 0)), 4).ref  # B frame, nal_ref_idc 0
    k = nalu.classify("h264", avcc(sei, h264(1, 2)), 4)
    assert k.ref and not k.closed
    k = nalu.classify("h264", b"\x00\x00\x00\x01" + h264(7, 3) + b"\x00\x00\x01" + h264(5, 3), None)  # Annex-B
    assert k.ref and k.closed
    assert nalu.classify("h264", avcc(h264(1, 0), h264(1, 1)), 4).ref  # any referenced slice makes it a reference


def test_hevc_kinds():
    assert not nalu.classify("hevc", avcc(hevc(0)), 4).ref  # TRAIL_N
    assert nalu.classify("hevc", avcc(hevc(1)), 4).ref  # TRAIL_R
    k = nalu.classify("hevc", avcc(hevc(32), hevc(19)), 4)  # VPS + IDR_W_RADL
    assert k.closed and k.ref
    k = nalu.classify("hevc", avcc(hevc(21)), 4)
    assert k.cra and not k.closed
    k = nalu.classify("hevc", avcc(hevc(8, tid=2)), 4)  # RASL_N in sub-layer 2
    assert k.rasl and k.slnr and k.tid == 2


def test_unjudgeable_packets():
    with pytest.raises(nalu.NalError, match="does not fit"):
        nalu.classify("h264", avcc(h264(1, 0))[:-1], 4)
    with pytest.raises(nalu.NalError, match="past the packet"):
        nalu.classify("h264", avcc(h264(1, 0)) + b"\x00\x00", 4)
    with pytest.raises(nalu.NalError, match="no VCL"):
        nalu.classify("h264", avcc(h264(6, 0)), 4)
    with pytest.raises(nalu.NalError, match="SVC/MVC"):
        nalu.classify("h264", avcc(h264(20, 1)), 4)
    with pytest.raises(nalu.NalError, match="multi-layer"):
        nalu.classify("hevc", avcc(hevc(1, layer=1)), 4)
    with pytest.raises(nalu.NalError, match="reserved"):
        nalu.classify("hevc", avcc(hevc(22)), 4)


def test_length_size_and_family():
    assert nalu.length_size("h264", bytes([1, 100, 0, 31, 0xFF, 0xE1, 0])) == 4
    assert nalu.length_size("h264", b"\x00\x00\x00\x01\x67") is None  # Annex-B extradata
    assert nalu.length_size("hevc", bytes([1] + [0] * 20 + [0xF1, 0])) == 2
    assert nalu.codec_family("h264") == "h264" and nalu.codec_family("hevc") == "hevc"
    assert nalu.codec_family("mpeg4") is None
