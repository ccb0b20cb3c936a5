import argparse
import json

import pytest

from egoflow.evaluate.cli import main, register
from egoflow.evaluate.parity import ParityWarning


def nlq_gt(tmp_path):
    p = tmp_path / "nlq_val.json"
    lq = [{"clip_start_sec": 2, "clip_end_sec": 6, "query": "a"},
          {"clip_start_sec": 0, "clip_end_sec": 2, "query": "b"}]
    p.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c", "video_start_sec": 0, "video_end_sec": 30,
        "annotations": [{"annotation_uid": "a", "language_queries": lq}]}]}]}))
    return p


def nlq_pred(path, windows):
    res = [{"clip_uid": "c", "annotation_uid": "a", "query_idx": i, "predicted_times": w} for i, w in windows.items()]
    path.write_text(json.dumps({"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": res}))
    return path


def test_two_runs_side_by_side(tmp_path, capsys):
    gt = nlq_gt(tmp_path)
    good = nlq_pred(tmp_path / "good.json", {0: [[2, 6]], 1: [[0, 2]]})
    half = nlq_pred(tmp_path / "half.json", {0: [[2, 6]]})
    out = tmp_path / "report"
    with pytest.warns(ParityWarning, match="missing='skip' \\(official"):  # the warning names the option
        assert main(["nlq", "--pred", str(good), str(half), "--gt", str(gt), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()  # default: the official script's rule, only predicted queries scored
    assert "| half | 100.00" in md and "half / nlq: 1 missing predictions (not scored)" in md
    assert main(["nlq", "--pred", str(good), str(half), "--gt", str(gt), "--out", str(out), "--nlq-missing",
                 "miss"]) == 0
    printed = capsys.readouterr().out
    assert "good" in printed and "half" in printed and "100.00" in printed
    md = (out / "report.md").read_text()
    assert "| good | 100.00" in md and "| half | 50.00" in md
    assert "half / nlq: 1 missing predictions (counted as misses)" in md
    assert (out / "nlq_recall_vs_iou.png").stat().st_size > 1000
    js = json.loads((out / "report.json").read_text())
    assert js["half"]["nlq"]["R@1 IoU=0.5"] == 0.5 and js["half"]["nlq"]["num_missing"] == 1


def test_runs_dirs_and_register(tmp_path):
    gt = nlq_gt(tmp_path)
    run = tmp_path / "runs" / "vslnet"
    run.mkdir(parents=True)
    nlq_pred(run / "predictions.json", {0: [[0, 4]], 1: [[0, 2]]})
    (run / "config.json").write_text(json.dumps({"benchmark": "nlq", "val_annotations": str(gt)}))
    parser = argparse.ArgumentParser(prog="egoflow")
    register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["evaluate", "nlq", "--runs", str(run), "--out", str(tmp_path / "r")])
    assert args.func(args) == 0
    js = json.loads((tmp_path / "r" / "report.json").read_text())
    assert js["vslnet"]["nlq"]["R@1 IoU=0.3"] == 1.0 and js["vslnet"]["nlq"]["R@1 IoU=0.5"] == 0.5


def test_bad_inputs_exit_2_with_one_message(tmp_path, capsys):
    gt = nlq_gt(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": [{"clip_uid": "c", "annotation_uid": "a", "query_idx": 0,
                                            "predicted_times": [[5, 1]]}]}))
    assert main(["nlq", "--pred", str(bad), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.json: results[0].predicted_times[0]: window ends" in err and "Traceback" not in err
    assert main(["nope", "--pred", str(bad), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["nlq", "--runs", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["nlq", "--pred", str(bad), "--gt", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.json: not found" in capsys.readouterr().err


def test_several_benchmarks_one_run(tmp_path):
    gt = nlq_gt(tmp_path)
    pred = nlq_pred(tmp_path / "p.json", {0: [[2, 6]], 1: [[0, 2]]})
    mq_gt = tmp_path / "moments_val.json"
    mq_gt.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c1", "video_start_sec": 0,
        "video_end_sec": 480, "annotations": [{"labels": [{"label": "cut", "start_time": 0, "end_time": 10,
                                                           "primary": True}]}]}]}]}))
    mq_pred = tmp_path / "mq.json"
    mq_pred.write_text(json.dumps({"version": "1.0", "results": {"c1": [{"label": "cut", "score": 1,
                                                                         "segment": [0, 8]}]}}))
    out = tmp_path / "r"
    assert main(["nlq", "mq", "--pred", str(pred), str(mq_pred), "--gt", str(gt), str(mq_gt), "--out", str(out),
                 "--name", "mine"]) == 0
    js = json.loads((out / "report.json").read_text())
    assert js["mine"]["mq"]["AP@tIoU=0.5"] == 1.0 and js["mine"]["mq"]["AP@tIoU=0.1"] == 1.0
    assert js["mine"]["mq"]["R@1 tIoU=0.7"] == 1.0  # IoU .8
    assert (out / "mq_ap_per_tiou.png").exists()
