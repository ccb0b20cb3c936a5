"""The cost model: probed durations, measured per-frame costs (tiny model on CPU), saved/reused profiles."""
import json
import math

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.plan import decode_groups, format_plan, make_plan, probe_hours, sig, video_group, weighted_decode_s


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    make_video(d / "a.mp4", [(0, 4, "red kettle")], fps=30, size=(160, 120))
    make_video(d / "b.mp4", [(0, 8, "blue mug")], fps=30, size=(160, 120), seed=2)
    make_video(d / "big" / "c.mp4", [(0, 2, "red kettle")], fps=30, size=(320, 240), seed=3)
    return d


def test_plan_figures_follow_from_measured_costs(videos, tmp_path):
    prof = tmp_path / "profile.json"
    p = make_plan([str(videos)], model="egoflow-tiny-ViT", fps=2.0, workers=2, device="cpu", precision="fp32",
                  batch_size=8, save_profile=str(prof))
    assert p["videos"] == 3 and p["hours"] == pytest.approx(14 / 3600, rel=0.05)
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
    for key in ("sampled frames", "CPU core-hours", "CPU-hours (encode measured on a CPU)", "decoders per GPU",
                "3 GPU(s)"):
        assert key in out
    assert main(["plan", str(videos / "missing.mp4"), "--model", "egoflow-tiny-ViT"]) == 2
    assert f"egoflow plan: error: {videos / 'missing.mp4'} does not exist" in capsys.readouterr().err


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


def test_one_decode_probe_per_resolution_and_codec_group_weighted_by_hours(videos):
    """The decode cost no longer depends on which file comes first: one probe per group, weighted by hours."""
    files = [videos / "a.mp4", videos / "big" / "c.mp4", videos / "b.mp4"]
    cost = {"160x120 h264": 2.0, "320x240 h264": 8.0}  # ms per sampled frame, by group
    calls = []

    def probe(path, fps, size):
        calls.append(path.name)
        return cost[video_group(path)]

    hours = probe_hours(files)
    g = decode_groups(files, hours, 2.0, 32, probe)
    assert [x["group"] for x in g] == ["160x120 h264", "320x240 h264"] and sorted(calls) == ["b.mp4", "c.mp4"]
    assert [x["probed"] for x in g] == ["b.mp4", "c.mp4"]  # the longest video of each group
    expect = (2.0 * (hours[0] + hours[2]) + 8.0 * hours[1]) / sum(hours) / 1e3
    assert weighted_decode_s(g) == pytest.approx(expect)
    rev = decode_groups(files[::-1], hours[::-1], 2.0, 32, probe)  # the same set listed in another order
    assert rev == g and weighted_decode_s(rev) == weighted_decode_s(g)


def test_every_figure_says_where_it_comes_from_with_enough_digits(videos):
    p = make_plan([str(videos)], model="egoflow-tiny-ViT", fps=2.0, device="cpu", precision="fp32", batch_size=8)
    src = p["sources"]
    assert src["decode_s_per_frame"].startswith("measured here") and src["hours_per_shard"].startswith("assumed")
    assert "from a CPU encode" in src["decoders_per_gpu"] and "not GPU-hours" in src["encode_device_hours"]
    assert len(p["profile"]["decode_groups"]) == 2
    text = format_plan(p)
    assert text.count("[") >= 5 and "measured here" in text and "derived" in text and "assumed" in text
    assert "160x120 h264: 2 video(s)" in text and "320x240 h264: 1 video(s)" in text
    core = text.split(" ms/frame -> ")[1].split(" CPU core-hours")[0]  # a few seconds of video: tiny, not "0.0"
    assert float(core) > 0 and len(core.lstrip("0.").replace(".", "")) >= 3
    assert sig(0.0000214) == "0.0000214" and sig(3.214) == "3.21" and sig(1234.5) == "1234"
