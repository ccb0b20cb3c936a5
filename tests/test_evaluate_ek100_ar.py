"""EK-100 action recognition against the official C1 ``evaluate.py``, on files the official ``create_submission.py``
writer produced (recorded in fixtures/official_ek100_ar.json with the official numbers; reference run outside the
repo), plus the named options and the duplicated-key error."""
import base64
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.evaluate.ek100_ar import official_action_scores, read_submission
from egoflow.evaluate.parity import ParityWarning

RECORD = json.loads((Path(__file__).parent / "fixtures" / "official_ek100_ar.json").read_text())
CASES = {c["name"]: c for c in RECORD["cases"]}


def write_case(tmp_path, case, unseen_name="EPIC_100_unseen_participant_ids_validation.csv"):
    gt = tmp_path / "EPIC_100_validation.csv"
    gt.write_text(case["gt_csv"])
    (tmp_path / "EPIC_100_tail_verbs.csv").write_text(case["tail_verbs_csv"])
    (tmp_path / "EPIC_100_tail_nouns.csv").write_text(case["tail_nouns_csv"])
    (tmp_path / unseen_name).write_text(case["unseen_csv"])
    sub = tmp_path / "submission.zip"
    sub.write_bytes(base64.b64decode(case["submission_zip_b64"]))
    return gt, sub


def ours_as_official(m: dict) -> dict:
    """Our metric names -> the official evaluate.py's printed names (percent)."""
    out = {}
    for task in ("verb", "noun", "action"):
        for k in (1, 5):
            out[f"all_{task}_accuracy_at_{k}"] = 100 * m[f"{task} top{k}"]
        for group in ("tail", "unseen"):
            if f"{group} {task} top1" in m:
                out[f"{group}_{task}_accuracy_at_1"] = 100 * m[f"{group} {task} top1"]
    return out


@pytest.mark.parametrize("name", ["random", "ties"])
def test_official_submission_scores_as_the_official_script(tmp_path, name):
    case = CASES[name]
    gt, sub = write_case(tmp_path, case)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
    ours = ours_as_official(m)
    assert set(ours) == set(case["official"])  # the same breakdowns (no unseen segment in "ties": none, as official)
    recorded_kernel = all((np.argsort(np.zeros(n)) == np.arange(n)).all() for n in (97, 300))
    if name == "ties" and not recorded_kernel:  # this NumPy's sort orders equal keys otherwise: so would the official
        top = [np.argsort(np.zeros(n))[::-1][0] for n in (97, 300)]
        assert m["verb top1"] == (1 + (top[0] == 0)) / 2 and m["noun top1"] == (1 + (top[1] == 0)) / 2
        return
    for k, want in case["official"].items():
        assert abs(ours[k] - want) <= 1e-12, (k, ours[k], want)
    texts = [str(w.message) for w in seen if issubclass(w.category, ParityWarning)]
    if name == "random":  # 3 of 16 segments unpredicted: scored over the 13, with a warning naming the option
        assert m["num_missing"] == 3 and m["num_evaluated"] == 13
        assert any("3 of 16 segments have no prediction: missing='official'" in t for t in texts)
        assert not any("tied" in t for t in texts)  # no tie decides a hit: the numbers do not hang on the sort kernel
    else:  # the tie: 97 verb scores all 0, label 0 -> official top-1 0 for that segment
        assert m["verb top1"] == 0.5 and any("tied scores change the verb/noun top-1" in t for t in texts)


def test_the_json_inside_the_zip_reads_the_same(tmp_path):
    gt, sub = write_case(tmp_path, CASES["random"])
    (tmp_path / "test.json").write_bytes(zipfile.ZipFile(sub).read("test.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        a = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
        b = get_benchmark("ek100-ar").evaluate(str(gt), str(tmp_path / "test.json"))
    assert a == b


def test_named_options_give_our_readings(tmp_path):
    gt, sub = write_case(tmp_path, CASES["ties"])
    with pytest.warns(ParityWarning, match="ties='stable' \\(lower index first\\); ties='numpy' gives other"):
        m = get_benchmark("ek100-ar").evaluate(str(gt), str(sub), ties="stable")
    assert m["verb top1"] == 1.0 and m["noun top1"] == 1.0  # the all-zero segment: class 0 ranks first
    gt, sub = write_case(tmp_path, CASES["random"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        official = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
        wrong = get_benchmark("ek100-ar").evaluate(str(gt), str(sub), missing="wrong")
    assert wrong["num_evaluated"] == 16
    assert wrong["verb top1"] == pytest.approx(official["verb top1"] * 13 / 16)  # the 3 unpredicted: wrong
    assert wrong["tail verb top1"] <= official["tail verb top1"]


def test_given_action_scores_are_used_and_absent_ones_computed_officially(tmp_path):
    gt, sub = write_case(tmp_path, CASES["random"])
    data = json.loads(zipfile.ZipFile(sub).read("test.json"))
    nids = list(data["results"])
    verb = np.array([[data["results"][n]["verb"][str(i)] for i in range(97)] for n in nids])
    noun = np.array([[data["results"][n]["noun"][str(i)] for i in range(300)] for n in nids])
    acts = official_action_scores(verb, noun)
    assert len(acts[0]) == 100 and max(acts[0], key=acts[0].get) == verb[0].argmax() * 1000 + noun[0].argmax()
    for n, a in zip(nids, acts):  # the same actions written out as "v,n" entries give the same numbers
        data["results"][n]["action"] = {f"{k // 1000},{k % 1000}": s for k, s in a.items()}
    (tmp_path / "with_action.json").write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        a = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
        b = get_benchmark("ek100-ar").evaluate(str(gt), str(tmp_path / "with_action.json"))
    assert a == b
    data["results"][nids[0]]["action"] = {"3,1": 5.0}  # a given action entry wins over the computed one
    (tmp_path / "one.json").write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        c = get_benchmark("ek100-ar").evaluate(str(gt), str(tmp_path / "one.json"))
    assert c["action top5"] != a["action top5"] or c["action top1"] != a["action top1"]


def test_duplicated_key_names_file_and_key(tmp_path):
    gt, sub = write_case(tmp_path, CASES["ties"])
    text = zipfile.ZipFile(sub).read("test.json").decode()
    body = text[text.index('"P01_01_0"'):text.index(', "P01_01_1"')]
    dup = text.replace('"results": {', '"results": {' + body + ", ", 1)
    (tmp_path / "dup.json").write_text(dup)
    with pytest.raises(PredictionError, match=r"dup.json: key 'P01_01_0': appears twice in one object"):
        read_submission(tmp_path / "dup.json")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("test.json", dup)
    (tmp_path / "dup.zip").write_bytes(buf.getvalue())
    with pytest.raises(PredictionError, match=r"dup.zip: test.json: key 'P01_01_0': appears twice"):
        get_benchmark("ek100-ar").evaluate(str(gt), str(tmp_path / "dup.zip"))


def test_split_files_found_by_official_names(tmp_path):
    case = CASES["random"]
    gt, sub = write_case(tmp_path, case, unseen_name="EPIC_100_unseen_participant_ids.csv")  # evaluate.py's default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        m = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
    assert m["num_unseen"] > 0 and abs(100 * m["unseen noun top1"] - case["official"]["unseen_noun_accuracy_at_1"]) \
        <= 1e-12
    for f in ("EPIC_100_tail_verbs.csv", "EPIC_100_unseen_participant_ids.csv"):
        (tmp_path / f).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)
        m = get_benchmark("ek100-ar").evaluate(str(gt), str(sub))
    assert not any(k.startswith(("tail", "unseen")) for k in m)  # no split files: no breakdowns


def test_cli_reads_the_official_zip_with_options_and_fails_cleanly(tmp_path, capsys):
    from egoflow.evaluate.cli import main
    gt, sub = write_case(tmp_path, CASES["random"])
    with pytest.warns(ParityWarning, match="missing='wrong'"):
        assert main(["ek100-ar", "--pred", str(sub), "--gt", str(gt), "--out", str(tmp_path / "r"),
                     "--ek100-missing", "wrong"]) == 0
    m = json.loads((tmp_path / "r" / "report.json").read_text())["submission"]["ek100-ar"]
    assert m["missing_policy"] == "wrong" and m["num_evaluated"] == 16 and "tail action top1" in m
    assert "3 missing predictions (counted as wrong)" in (tmp_path / "r" / "report.md").read_text()
    (tmp_path / "dup.json").write_text('{"results": {"a": 1, "a": 2}}')
    assert main(["ek100-ar", "--pred", str(tmp_path / "dup.json"), "--gt", str(gt), "--out", str(tmp_path / "s")]) == 2
    assert "dup.json: key 'a': appears twice in one object" in capsys.readouterr().err


def test_empty_tail_group_is_nan_and_no_unseen_segment_no_numbers():
    from egoflow.datasets.ek100_actions import EK100Action
    from egoflow.evaluate.ek100_ar import EK100Splits, ek100_actions_metrics
    gt = [EK100Action("P01_01_0", "P01_01", 0.0, 1.0, "", 1, 2, "P01")]
    sub = {"results": {"P01_01_0": {"verb": {"0": 0.0, "1": 1.0}, "noun": {"0": 0.0, "1": 0.5, "2": 1.0}}}}
    m = ek100_actions_metrics(gt, sub, splits=EK100Splits(frozenset({1}), frozenset({0}), frozenset({"P09"})))
    assert m["verb top1"] == m["action top1"] == 1.0 and m["tail verb top1"] == 1.0
    assert np.isnan(m["tail noun top1"]) and m["tail action top1"] == 1.0  # a tail verb makes a tail action
    assert not any(k.startswith("unseen") for k in m)  # official: a warning and no unseen numbers
