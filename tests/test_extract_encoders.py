"""EncoderSpec: kind defaults, one frames-per-window setting, validation, describe without a model, the one factory,
and the CLI building it once (spec_from_args / options_from_args)."""
import pytest

from egoflow.cli import build_parser
from egoflow.cli.args import options_from_args, spec_from_args
from egoflow.extract.encoders import FUSED_BATCH_CAP, EncoderSpec, EncoderSpecError, create, describe, with_frames
from egoflow.extract.pipeline import ExtractConfig, default_set_name


def test_kind_defaults_and_validation():
    clip, fused = EncoderSpec(), EncoderSpec("fused")
    assert (clip.model, clip.frames, clip.fused) == ("ViT-B-32", 0, False)
    assert (fused.model, fused.frames, fused.fused) == ("egovlpv2-base", 16, True)
    with pytest.raises(EncoderSpecError, match="unknown encoder kind"):
        EncoderSpec("mae")
    with pytest.raises(EncoderSpecError, match="frames per window must be >= 1"):
        EncoderSpec("fused", frames=0)
    with pytest.raises(EncoderSpecError, match="belong to the fused encoder"):
        EncoderSpec("clip", tokenizer="tok/")
    with pytest.raises(EncoderSpecError, match="unknown encoder setting"):
        EncoderSpec.from_dict({"kind": "clip", "window": 4})
    spec = EncoderSpec("fused", "egovlpv2-tiny", frames=4, tokenizer="t/")
    assert EncoderSpec.from_dict(spec.to_dict()) == spec and spec.with_device("cuda:1").device == "cuda:1"


def test_frames_set_the_window_and_names_need_no_model():
    cfg = ExtractConfig(fps=2.0, stride=3)
    assert with_frames(EncoderSpec(frames=4), cfg).window == 4 and cfg.window == 0  # a copy, cfg untouched
    assert with_frames(object(), cfg) is cfg  # an encoder object leaves cfg alone
    assert describe(EncoderSpec("fused", "egovlpv2-tiny")) == {"encoder": "fused", "model": "egovlpv2-tiny",
                                                               "pretrained": "none"}
    assert default_set_name(EncoderSpec(model="egoflow-tiny-ViT", frames=4), cfg) == \
        "clip-egoflow-tiny-ViT-none-2fps-w4s3"
    assert default_set_name(EncoderSpec("fused", "egovlpv2-tiny", frames=4), ExtractConfig(fps=4.0)) == \
        "fused-egovlpv2-tiny-none-4fps-w4s4"


def test_one_factory_caches_and_caps_fused_batches():
    clip = EncoderSpec(model="egoflow-tiny-ViT", precision="fp32", device="cpu")
    assert create(clip) is create(clip)  # loaded once per process
    enc = create(EncoderSpec("fused", "egovlpv2-tiny", precision="fp32", device="cpu", frames=4, batch_size=64))
    assert enc.cfg.batch_size == FUSED_BATCH_CAP and enc.cfg.num_frames == 4


def test_cli_builds_the_spec_once_from_one_frames_flag(capsys):
    ap = build_parser()
    a = ap.parse_args(["extract", "v", "--store", "s", "--encoder", "fused", "--window", "4", "--stride", "2"])
    spec = spec_from_args(a)
    assert spec == EncoderSpec("fused", "egovlpv2-base", frames=4)
    assert "--window is now --frames" in capsys.readouterr().err
    assert options_from_args(a, spec).fps == 1.875 * 2  # Ego4D's 1.875 features/s at stride 2
    a = ap.parse_args(["extract", "v", "--store", "s", "--frames", "8"])
    assert spec_from_args(a).frames == 8 and options_from_args(a, spec_from_args(a)).fps == 1.875
    with pytest.raises(SystemExit):
        ap.parse_args(["extract", "v", "--store", "s", "--frames", "8", "--num-frames", "16"])
    assert "both set the frames per window" in capsys.readouterr().err
