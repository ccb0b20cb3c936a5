"""The cost model: probed durations, measured per-frame costs (tiny model on CPU), saved/reused profiles."""
import json
import math

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.plan import make_plan


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    make_video(d / "a.mp4", [(0, 4, "red kettle")], fps=30, size=(160, 120))
    make_video(d / "b.mp4", [(0, 8, "blue mug")], fps=30, size=(160, 120), seed=2)
    return d


def test_plan_figures_follow_from_measured_costs(videos, tmp_path):
    prof = tmp_path / "profile.json"
    p = make_plan([str(videos)], model="egoflow-tiny-ViT", fps=2.0, workers=2, device="cpu", precision="fp32",
                  batch_size=8, save_profile=str(prof))
    assert p["videos"] == 2 and p["hours"] == pytest.approx(12 / 3600, rel=0.05)
    assert p["sampled_frames"] == int(p["hours"] * 3600 * 2.0)
    c = p["profile"]
    assert c["decode_s_per_frame"] > 0 and c["encode_s_per_frame"] > 0 and c["encode_measured_on"].startswith("cpu")
    assert p["decoders_per_gpu"] == math.ceil(c["decode_s_per_frame"] / c["encode_s_per_frame"])
    assert p["decode_cpu_hours"] == pytest.approx(p["sampled_frames"] * c["decode_s_per_frame"] / 3600)
    # a saved profile (e.g. from a GPU node) gives the same figures without measuring, scaled to Ego4D size
    q = make_plan([str(videos)], model="egoflow-tiny-ViT", fps=2.0, workers=2, profile=str(prof),
                  total_hours=3670)
    assert q["profile"] == json.loads(prof.read_text()) and q["hours"] == pytest.approx(3670)
    assert q["encode_device_hours"] == pytest.approx(p["encode_device_hours"] * 3670 / p["hours"])
    assert q["shards"] == 8  # 2 GPUs x 4 shards each
    with pytest.raises(ValueError, match="measured for model"):
        make_plan([str(videos)], model="ViT-L-14", profile=str(prof))


def test_plan_cli_prints_the_cost_lines(videos, capsys):
    assert main(["plan", str(videos / "a.mp4"), "--model", "egoflow-tiny-ViT", "--fps", "2", "--device", "cpu",
                 "--precision", "fp32", "--batch-size", "8", "--workers", "3"]) == 0
    out = capsys.readouterr().out
    for key in ("sampled frames", "CPU core-hours", "device-hours", "decoders per GPU", "3 GPU(s)"):
        assert key in out
    assert main(["plan", str(videos / "missing.mp4"), "--model", "egoflow-tiny-ViT"]) == 2
    assert "missing.mp4 does not exist" in capsys.readouterr().err  # not "no readable video": it is not there


def test_gpu_check_script_cpu_path_writes_a_profile_plan_reads(videos, tmp_path):
    """benchmarks/gpu_extract.py on CPU (tiny model): every figure present, its profile feeds `egoflow plan`."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_extract.py"
    spec = importlib.util.spec_from_file_location("gpu_extract", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--quick", "--device", "cpu", "--fps", "2", "--profiles-dir", str(tmp_path)])
    assert [(r["batch"], r["precision"]) for r in out["rows"]] == [(8, "fp32"), (16, "fp32")]
    assert all(r["encode_fps"] > 0 and r["decoders_per_gpu"] >= 1 for r in out["rows"])
    prof = tmp_path / "egoflow-tiny-ViT.json"
    p = make_plan([str(videos)], model="egoflow-tiny-ViT", fps=2.0, profile=str(prof))
    assert p["profile"]["encode_measured_on"].startswith("cpu")
