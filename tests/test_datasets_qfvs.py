import pytest

from egoflow.datasets.errors import AnnotationError
from egoflow.datasets.qfvs import load_qfvs


def make(tmp_path, tags="Book,Chair\nBook\n\nChair,Food\n", oracle="1\n4\n", dictionary="'Book'\n'Chair'\n'Food'\n"):
    base = tmp_path / "origin_data"
    (base / "Dense_per_shot_tags" / "P01").mkdir(parents=True, exist_ok=True)
    if dictionary is not None:
        (base / "Dense_per_shot_tags" / "Dictionary.txt").write_text(dictionary)
    (base / "Dense_per_shot_tags" / "P01" / "P01.txt").write_text(tags)
    odir = base / "Query-Focused_Summaries" / "Oracle_Summaries" / "P01"
    odir.mkdir(parents=True, exist_ok=True)
    (odir / "Book_Chair_oracle.txt").write_text(oracle)
    udir = base / "Query-Focused_Summaries" / "User_Summaries" / "P01" / "Book_Chair"
    udir.mkdir(parents=True, exist_ok=True)
    (udir / "user1.txt").write_text("2\n")
    return base


def test_reads_layout(tmp_path):
    make(tmp_path)
    v = load_qfvs(tmp_path, videos=("P01",))["P01"]
    assert v.num_shots == 4 and v.shot_concepts[2] == frozenset()
    assert v.concepts == ["Book", "Chair", "Food"]
    q = v.queries[0]
    assert (q.concepts, q.oracle, q.users, q.name) == (("Book", "Chair"), (0, 3), ((1,),), "Book_Chair")
    assert v.tag_matrix().astype(int).tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1]]


@pytest.mark.parametrize("kw, match", [
    ({"oracle": "1\nfive\n"}, r"Book_Chair_oracle.txt: line 2: expected a shot index"),
    ({"oracle": "1\n9\n"}, r"line 2: shot 9 outside 1..4"),
    ({"tags": "Book\nSpoon\n"}, r"P01.txt: line 2: concept\(s\) \['Spoon'\]"),
])
def test_malformed(tmp_path, kw, match):
    make(tmp_path, **kw)
    with pytest.raises(AnnotationError, match=match):
        load_qfvs(tmp_path, videos=("P01",))


def test_missing_parts(tmp_path):
    with pytest.raises(AnnotationError, match="no Dense_per_shot_tags"):
        load_qfvs(tmp_path)
    make(tmp_path)
    with pytest.raises(AnnotationError, match=r"P02.txt: file not found"):
        load_qfvs(tmp_path, videos=("P01", "P02"))
