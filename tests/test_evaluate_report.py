import json

from egoflow.evaluate.report import format_table, write_report


def test_report_tables_plots_and_json(tmp_path):
    results = {
        "a": {"mq": {"mAP": 0.25, "AP@tIoU=0.1": 0.3, "AP@tIoU=0.5": 0.2, "num_clips": 3, "num_missing": 0},
              "ek100-mir": {"mAP": 0.5, "nDCG": 0.6, "num_missing_videos": 2,
                            "curves": {"pr V2T": {"rank": [1, 2], "precision": [1, .5], "recall": [.5, 1]}}},
              "qfvs": {"F1": .5, "precision": .5, "recall": .5, "per_video": {"P01": {"F1": .5}}}},
        "b": {"mq": {"mAP": 0.125, "AP@tIoU=0.1": float("nan"), "num_clips": 3}},
        "c": {"custom": {"score": 0.123456, "per_class": {"x": 1}}},
    }
    md, js = write_report(results, tmp_path / "out")
    text = open(md).read()
    assert "| a | 25.00 | 30.00 | 20.00 | 3 | 0 |" in text and "| b | 12.50 | nan | — | 3 | — |" in text
    assert "| c | 0.1235 |" in text  # unknown benchmark: raw values
    assert "a / ek100-mir: 2 missing videos" in text
    for png in ("mq_ap_per_tiou.png", "ek100_mir_pr.png", "qfvs_f1_per_video.png"):
        assert (tmp_path / "out" / png).stat().st_size > 1000 and png in text
    data = json.load(open(js))
    assert data["b"]["mq"]["AP@tIoU=0.1"] is None and data["c"]["custom"]["per_class"] == {"x": 1}
    table = format_table(results)
    assert "== mq (%)" in table and table.count("\n") > 6
