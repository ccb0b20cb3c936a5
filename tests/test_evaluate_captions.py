"""Caption metrics (pycocoevalcap BLEU/METEOR/CIDEr), the captions prediction format and `egoflow evaluate captions`."""
import json
from pathlib import Path

import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.evaluate.captions import (
    MissingCaptionsError,
    caption_metrics,
    evaluate_captions_files,
    narration_key,
)
from egoflow.evaluate.parity import ParityWarning
from egoflow.formats import CaptionFormatError, read_captions, write_submission

REFS = {"a": ["the man opens the fridge door"], "b": ["a woman cuts the red onion slowly"],
        "c": ["he washes the big plate in the sink"]}


def test_perfect_captions_score_one_and_wrong_ones_less():
    perfect = caption_metrics(REFS, {k: v[0] for k, v in REFS.items()}, meteor=False)
    assert perfect["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and perfect["CIDEr"] > 1.0
    with pytest.warns(ParityWarning, match="1 ground-truth id"):
        wrong = caption_metrics(REFS, {"a": "he washes the big plate in the sink",
                                       "b": "the man opens the fridge door"}, meteor=True, missing="empty")
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


OFFICIAL = json.loads((Path(__file__).parent / "fixtures" / "official_captions.json").read_text())
NAMES = {"BLEU-1": "Bleu_1", "BLEU-2": "Bleu_2", "BLEU-3": "Bleu_3", "BLEU-4": "Bleu_4", "METEOR": "METEOR",
         "ROUGE-L": "ROUGE_L", "CIDEr": "CIDEr"}


def assert_official(m: dict, want: dict):
    for ours, theirs in NAMES.items():
        assert abs(m[ours] - want[theirs]) <= 1e-12, (ours, m[ours], want[theirs])


def test_equals_recorded_coco_evalcap_with_empty_and_missing_captions():
    """fixtures/official_captions.json: pycocoevalcap's COCOEvalCap.evaluate (SPICE skipped) on captions that are
    empty ("" and "..." tokenize to nothing) and on a submission missing an id."""
    refs = OFFICIAL["refs"]
    assert_official(caption_metrics(refs, OFFICIAL["cases"]["plain"]["preds"]), OFFICIAL["cases"]["plain"]["official"])
    with pytest.warns(ParityWarning, match="2 caption\\(s\\) are empty after tokenization.*empty='official'"):
        m = caption_metrics(refs, OFFICIAL["cases"]["empty"]["preds"])
    assert_official(m, OFFICIAL["cases"]["empty"]["official"])
    assert m["num_empty"] == 2
    with pytest.warns(ParityWarning, match="empty='placeholder'"):
        old = caption_metrics(refs, OFFICIAL["cases"]["empty"]["preds"], empty="placeholder", meteor=False)
    assert old["BLEU-1"] != m["BLEU-1"]  # the former <empty> substitution is an option, not the default
    preds = OFFICIAL["missing"]["preds"]
    assert OFFICIAL["missing"]["default_outcome"].startswith("AssertionError")  # COCO's evaluator fails
    with pytest.raises(MissingCaptionsError, match="1 ground-truth id\\(s\\) have no caption, e.g. \\['v2_4.000'\\]"):
        caption_metrics(refs, preds)
    with pytest.warns(ParityWarning, match="missing='skip'"):
        skip = caption_metrics(refs, preds, missing="skip")
    assert_official(skip, OFFICIAL["missing"]["official_predicted_only"])
    with pytest.warns(ParityWarning, match="missing='empty'"):
        empty = caption_metrics(refs, preds, missing="empty", meteor=False)
    assert empty["num_scored"] == 5 and empty["BLEU-1"] != skip["BLEU-1"]


def test_missing_caption_file_error_names_file_and_ids(tmp_path):
    narr = {"v": {"narration_pass_1": {"narrations": [
        {"timestamp_sec": 1.0, "narration_text": "#C C opens the door"},
        {"timestamp_sec": 4.5, "narration_text": "#C C cuts the onion"}]}}}
    (tmp_path / "narration.json").write_text(json.dumps(narr))
    pred = write_submission("captions", [{"id": narration_key("v", 1.0), "caption": "c opens the door"}],
                            tmp_path / "p.json")
    with pytest.raises(PredictionError, match=r"p.json: 1 ground-truth id\(s\) have no caption, e.g. \['v_4.500'\]"):
        evaluate_captions_files(tmp_path / "narration.json", pred)
