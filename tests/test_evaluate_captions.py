"""Caption metrics (pycocoevalcap BLEU/METEOR/CIDEr), the captions prediction format and `egoflow evaluate captions`."""
import json

import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.evaluate.captions import (
    caption_metrics,
    evaluate_captions_files,
    narration_key,
)
from egoflow.formats import CaptionFormatError, read_captions, write_submission

REFS = {"a": ["the man opens the fridge door"], "b": ["a woman cuts the red onion slowly"],
        "c": ["he washes the big plate in the sink"]}


def test_perfect_captions_score_one_and_wrong_ones_less():
    perfect = caption_metrics(REFS, {k: v[0] for k, v in REFS.items()}, meteor=False)
    assert perfect["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and perfect["CIDEr"] > 1.0
    wrong = caption_metrics(REFS, {"a": "he washes the big plate in the sink", "b": "the man opens the fridge door"},
                            meteor=True)
    assert wrong["BLEU-4"] < 0.5 and wrong["CIDEr"] < perfect["CIDEr"] and wrong["num_missing"] == 1
    assert 0.0 <= wrong["METEOR"] < 1.0


def test_captions_file_round_trip_and_errors(tmp_path):
    recs = [{"id": "v_1.000", "caption": "c opens door", "video_uid": "v"}]
    p = write_submission("captions", recs, tmp_path / "c.json")
    assert read_captions(p) == {"v_1.000": "c opens door"}
    (tmp_path / "d.json").write_text(json.dumps({"results": recs + recs}))
    with pytest.raises(CaptionFormatError, match=r"results\[1\]: id 'v_1.000' appears twice"):
        read_captions(tmp_path / "d.json")
    (tmp_path / "e.json").write_text(json.dumps({"results": [{"id": "x"}]}))
    with pytest.raises(CaptionFormatError, match=r"results\[0\]"):
        read_captions(tmp_path / "e.json")


def test_evaluate_captions_cli_against_narration_json(tmp_path):
    from egoflow.evaluate.cli import main
    narr = {"v": {"narration_pass_1": {"narrations": [
        {"timestamp_sec": 1.0, "narration_text": "#C C opens the door"},
        {"timestamp_sec": 4.5, "narration_text": "#C C cuts the onion"}]}}}
    (tmp_path / "narration.json").write_text(json.dumps(narr))
    recs = [{"id": narration_key("v", 1.0), "caption": "#C C opens the door"},
            {"id": narration_key("v", 4.5), "caption": "#C C cuts the onion"}]
    pred = write_submission("captions", recs, tmp_path / "p.json")
    m = evaluate_captions_files(tmp_path / "narration.json", pred)
    assert m["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and m["num_missing"] == 0
    assert main(["captions", "--pred", pred, "--gt", str(tmp_path / "narration.json"), "--out",
                 str(tmp_path / "rep")]) == 0
    write_submission("captions", [{"id": "w_0.000", "caption": "x"}], tmp_path / "bad.json")
    with pytest.raises(PredictionError, match="w_0.000.*not in the ground truth"):
        evaluate_captions_files(tmp_path / "narration.json", tmp_path / "bad.json")
