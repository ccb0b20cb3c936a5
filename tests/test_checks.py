"""egoflow/checks.py: the one input checker (file reading and field rules) every reader uses."""
import json

import pytest

from egoflow.checks import Checker, InputFileError, clip_tolerance, one_line, read_csv_rows, read_json, read_lines
from egoflow.errors import EgoflowUserError


def test_read_json_equals_json_load_on_valid_files(tmp_path):
    data = {"a": [1, 2.5, {"b": None, "c": "é"}], "d": {"e": True}, "big": 10 ** 30}
    p = tmp_path / "x.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert read_json(p) == json.loads(p.read_text(encoding="utf-8"))
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())  # a BOM (Windows editors) is not an error
    assert read_json(p) == data


@pytest.mark.parametrize("raw,where,message", [
    (b'{"a": {"b": 1, "b": 2}}', "key 'b'", "appears twice"),
    (b'[{"a": 1},\n{"a": ' + b"7" * 5000 + b"}]", "line 2", "integer of 5000 digits"),
    (b'{"a": "caf\xe9"}', "line 1 (byte 10)", "not UTF-8"),
    (b'{"a": 1,\n}', "line 2 column 1", "invalid JSON"),
    (b"[" * 100000 + b"]" * 100000, None, "nested too deeply"),
])
def test_read_json_faults_name_the_file(tmp_path, raw, where, message):
    p = tmp_path / "f.json"
    p.write_bytes(raw)
    with pytest.raises(InputFileError) as e:
        read_json(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and (where is None or where in msg) and message in msg and "\n" not in msg
    assert isinstance(e.value, (EgoflowUserError, ValueError))


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputFileError, match="nope.json: file not found"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(InputFileError, match="not a file"):
        read_lines(tmp_path)


def test_csv_rows(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b'id,text\r\n1,"two\r\nlines"\r\n2,b\r\n')
    assert read_csv_rows(p, ("id",)) == [{"id": "1", "text": "two\nlines"}, {"id": "2", "text": "b"}]
    with pytest.raises(InputFileError, match=r"line 1 \(header\): missing column\(s\) \['x'\]"):
        read_csv_rows(p, ("x",))
    p.write_text("id,text\n1,a,extra\n")
    with pytest.raises(InputFileError, match="row 2: 3 fields, the header has 2"):
        read_csv_rows(p, ("id",))


@pytest.mark.parametrize("call,message", [
    (lambda ck: ck.time(-1, "t"), "t: negative time -1"),
    (lambda ck: ck.time(1e308, "t"), "plausible"),
    (lambda ck: ck.time(float("nan"), "t"), "plausible"),
    (lambda ck: ck.time(10 ** 400, "t"), "number out of range (401 digits)"),
    (lambda ck: ck.time(True, "t"), "expected a number, got True"),
    (lambda ck: ck.score(1e31, "s"), "plausible"),
    (lambda ck: ck.check(2 ** 64, "i", int), "integer out of range"),
    (lambda ck: ck.window(5, 1, "w"), "w: window ends before it starts (5 > 1)"),
    (lambda ck: ck.window(0, 32, "w", 30), "past the end of its 30 s clip"),
    (lambda ck: ck.int_text("9" * 400, "r"), "integer out of range (400 digits)"),
    (lambda ck: ck.int_text("-3", "r"), "negative value -3"),
    (lambda ck: ck.int_text("٣", "r"), "expected an integer"),  # a non-ASCII digit is not a CSV integer
    (lambda ck: ck.time_text("1e400", "r"), "plausible"),
    (lambda ck: ck.unique({"a"}, "a", "r"), "id 'a' appears twice"),
    (lambda ck: ck.get({"a": "x" * 500}, "a", "", int), "chars)"),  # a long value is cut, the line stays short
])
def test_field_rules(call, message):
    with pytest.raises(InputFileError) as e:
        call(Checker("f.json"))
    assert message in str(e.value) and len(str(e.value)) < 200


def test_rules_accept_good_values():
    ck = Checker("f.json")
    assert ck.time(0, "t") == 0.0 and ck.score(-1e20, "s") == -1e20 and ck.int_text(" 42 ", "r") == 42
    ck.window(0, 30.9, "w", 30)  # within the 1 s tolerance
    ck.window(0, 484, "w", 480)  # 1% of a 480 s clip
    assert clip_tolerance(30) == 1.0 and clip_tolerance(480) == 4.8


def test_one_line():
    assert one_line(ValueError("a\nb   c")) == "ValueError: a b c"
    assert len(one_line(RuntimeError("x" * 1000))) < 200
