"""EPIC-KITCHENS-100 action csv + class lists reader."""
import pytest

from egoflow.datasets.ek100_actions import ek100_class_files, load_ek100_actions, load_ek100_classes, parse_timestamp
from egoflow.datasets.errors import AnnotationError

HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
          "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")


def test_actions_and_classes(tmp_path):
    p = tmp_path / "EPIC_100_train.csv"
    p.write_text(HEADER + 'P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,8,'
                 '[\'door\'],[8]\n'
                 'P01_01_1,P01,P01_01,00:00:02.629,00:01:02.50,00:01:02.50,150,150,turn on light,turn-on,6,light,'
                 '113,[\'light\'],[113]\n')
    acts = load_ek100_actions(p)
    assert [a.narration_id for a in acts] == ["P01_01_0", "P01_01_1"]
    assert acts[0].start_sec == pytest.approx(0.14) and acts[0].stop_sec == pytest.approx(3.37)
    assert acts[1].start_sec == acts[1].stop_sec == pytest.approx(62.5)  # zero-length kept
    assert acts[0].action == (3, 8) and acts[1].narration == "turn on light"
    verbs = tmp_path / "EPIC_100_verb_classes.csv"
    verbs.write_text("id,key,instances,category\n1,put,\"['put']\",leave\n0,take,\"['take']\",retrieve\n")
    assert load_ek100_classes(verbs) == ["take", "put"]
    assert ek100_class_files(p)[0] == str(verbs)


def test_unlabelled_test_split_reads_minus_one(tmp_path):
    p = tmp_path / "test.csv"
    p.write_text("narration_id,participant_id,video_id,start_timestamp,stop_timestamp\nP02_01_0,P02,P02_01,"
                 "00:00:01.00,00:00:02.00\n")
    assert load_ek100_actions(p)[0].action == (-1, -1)


@pytest.mark.parametrize("row,match", [
    ("P01_01_0,P01,P01_01,0,00:00:05.00,00:00:03.00,0,0,x,x,1,y,2,,", "before start"),
    ("P01_01_0,P01,P01_01,0,00:xx:05.00,00:00:06.00,0,0,x,x,1,y,2,,", "not HH:MM:SS"),
    ("P01_01_0,P01,P01_01,0,00:00:05.00,00:00:06.00,0,0,x,x,one,y,2,,", "integer class index"),
    ("P01_01_0,P01,P01_01,0,00:00:05.00,00:00:06.00,0,0,x,x,-3,y,2,,", "negative value -3"),
])
def test_bad_rows_name_file_and_row(tmp_path, row, match):
    p = tmp_path / "bad.csv"
    p.write_text(HEADER + row + "\n")
    with pytest.raises(AnnotationError, match=f"bad.csv.*row 2.*{match}"):
        load_ek100_actions(p)


def test_duplicates_and_gaps(tmp_path):
    p = tmp_path / "dup.csv"
    row = "P01_01_0,P01,P01_01,0,00:00:01.00,00:00:02.00,0,0,x,x,1,y,2,,\n"
    p.write_text(HEADER + row + row)
    with pytest.raises(AnnotationError, match="appears twice"):
        load_ek100_actions(p)
    c = tmp_path / "classes.csv"
    c.write_text("id,key\n0,a\n2,b\n")
    with pytest.raises(AnnotationError, match="not 0..1"):
        load_ek100_classes(c)
    assert parse_timestamp("01:02:03.5", "w", "p") == pytest.approx(3723.5)
