import pytest

from egoflow.datasets.charades_ego import (
    label_matrix,
    load_charades_classes,
    load_charades_ego,
    load_charades_submission,
)
from egoflow.datasets.errors import AnnotationError, PredictionError

HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length,egocentric\n"


def test_reads_csv_and_labels(tmp_path):
    p = tmp_path / "CharadesEgo_v1_test_only1st.csv"
    p.write_text(HEADER + 'AAAAEGO,s1,Kitchen,6,7,Yes,"a, b",cup,"x",c002 11.90 21.20;c000 0.00 12.60,30.5,Yes\n'
                 'BBBBEGO,s2,Hall,6,7,Yes,s,o,d,,12,Yes\n')
    vids = load_charades_ego(p)
    assert [v.video_id for v in vids] == ["AAAAEGO", "BBBBEGO"]
    assert vids[0].classes == [0, 2] and vids[0].actions[0].start_sec == 11.9 and vids[0].length_sec == 30.5
    assert vids[1].actions == ()
    assert label_matrix(vids, 3).astype(int).tolist() == [[1, 0, 1], [0, 0, 0]]
    assert load_charades_ego(p, num_classes=3) == vids
    with pytest.raises(AnnotationError, match=r"video AAAAEGO: class c002 is not in the class list \(2 classes\)"):
        load_charades_ego(p, num_classes=2)  # the class list has fewer classes than the csv uses


@pytest.mark.parametrize("actions, match", [("x002 1 2", "bad class id 'x002'"), ("c002 1", "bad action"),
                                            ("c002 a 2", "action 'c002 a 2': expected a time in seconds")])
def test_malformed_actions(tmp_path, actions, match):
    p = tmp_path / "a.csv"
    p.write_text(HEADER + f"AAAA,s,k,1,1,Yes,s,o,d,{actions},3,Yes\n")
    with pytest.raises(AnnotationError, match=rf"a.csv: line 2 \(id 'AAAA'\): {match}"):
        load_charades_ego(p)


def test_missing_column(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("id,length\nA,3\n")
    with pytest.raises(AnnotationError, match=r"missing column\(s\) \['actions'\]"):
        load_charades_ego(p)


def test_classes_and_submission(tmp_path):
    c = tmp_path / "Charades_v1_classes.txt"
    c.write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    assert load_charades_classes(c) == ["Holding some clothes", "Putting clothes somewhere"]
    c.write_text("c000 a\nc002 b\n")
    with pytest.raises(AnnotationError, match="line 2: class c002 out of order"):
        load_charades_classes(c)
    s = tmp_path / "sub.txt"
    s.write_text("AAAA 0.1 0.2\nBBBB\t0.3\t-1e3\n")
    sub = load_charades_submission(s)
    assert sub["BBBB"].tolist() == [0.3, -1000.0]
    s.write_text("AAAA 0.1 0.2\nBBBB 0.3\n")
    with pytest.raises(PredictionError, match="line 2: expected 2 numeric scores"):
        load_charades_submission(s)
