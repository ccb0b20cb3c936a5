"""Fault class 5 (issue 12): one-line errors naming the file, and exit codes that say whose fault it is.

0 ok, 1 some videos failed, 2 user error, 3 environment (disk full, read-only store). Store misuse (a regular
file, a foreign Zarr v2 group, a corrupt root zarr.json), disk full during a write (faked: ENOSPC raised by the
store write), a 400-digit integer in an annotation file, and a video shorter than half a sampling step.
Encoder: the random-init tiny test config.
"""
import errno
import json

import pytest

from egoflow.cli import main
from egoflow.datasets.errors import AnnotationError, Checker
from egoflow.datasets.synthetic.videos import make_video
from egoflow.features_store import FeatureStore, StoreError

TINY = "egoflow-tiny-ViT"
ARGS = ["--model", TINY, "--fps", "1", "--quiet", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("src") / "c.mp4", [(0, 2, "red kettle")], fps=10, size=(32, 32)).path


def _one_line_error(capsys, *needles):
    text = capsys.readouterr().err
    err = [ln for ln in text.splitlines() if ln.startswith("egoflow ")]  # not the random-init warning
    assert len(err) == 1 and "Traceback" not in text, text
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_store_that_is_a_regular_file(clip, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    assert main(["extract", str(clip), "--store", str(f), *ARGS]) == 2
    _one_line_error(capsys, str(f), "regular file")
    assert f.read_text() == "hello"


def test_foreign_zarr_v2_group_is_left_untouched(clip, tmp_path, capsys):
    import zarr

    v2 = tmp_path / "old.zarr"
    zarr.open_group(str(v2), mode="w", zarr_format=2).attrs["mine"] = 1
    before = sorted(p.name for p in v2.iterdir())
    assert main(["extract", str(clip), "--store", str(v2), *ARGS]) == 2
    _one_line_error(capsys, str(v2), "Zarr v2")
    assert sorted(p.name for p in v2.iterdir()) == before and not (v2 / "zarr.json").exists()


def test_corrupt_root_metadata_names_the_file(tmp_path, capsys):
    s = tmp_path / "s.zarr"
    FeatureStore(str(s))
    (s / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="zarr.json"):
        FeatureStore(str(s))
    assert main(["store", "info", "--store", str(s)]) == 2
    _one_line_error(capsys, "zarr.json", "corrupt")


def test_disk_full_is_an_environment_error(clip, tmp_path, monkeypatch, capsys):
    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "s.zarr" / "x" / "feats"))

    monkeypatch.setattr(FeatureStore, "write_video", full)
    rc = main(["extract", str(clip), "--store", str(tmp_path / "s.zarr"), *ARGS])
    assert rc == 3
    _one_line_error(capsys, "environment error", "No space left on device")


def test_store_permission_refused_is_an_environment_error(clip, tmp_path, monkeypatch, capsys):
    url = str(tmp_path / "s.zarr")

    def refused(self, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", url + "/fs/c/zarr.json")

    monkeypatch.setattr(FeatureStore, "write_video", refused)
    assert main(["extract", str(clip), "--store", url, *ARGS]) == 3
    _one_line_error(capsys, "Permission denied", url)


def test_video_shorter_than_half_a_step_says_so(tmp_path, capsys):
    short = make_video(tmp_path / "short.mp4", [(0, 0.2, "red kettle")], fps=30, size=(32, 32)).path
    rc = main(["extract", str(short), "--store", str(tmp_path / "s.zarr"), *ARGS])
    out = capsys.readouterr().out
    assert rc == 1 and "lasts 0.20 s" in out and "--fps" in out and "no frames could be decoded" not in out


@pytest.mark.parametrize("value,msg", [(10 ** 400, "out of range"), (1e308, "plausible"), ("3", "expected a number"),
                                       (True, "expected a number")])
def test_checker_rejects_bad_numbers_with_key_path(tmp_path, value, msg):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"t": value}))
    data = json.loads(path.read_text())  # a 400-digit JSON integer parses to a Python int
    with pytest.raises(AnnotationError, match=msg) as e:
        Checker(path).get(data, "t", "videos[0]", float)
    assert str(path) in str(e.value) and "videos[0].t" in str(e.value) and len(str(e.value)) < 200
    with pytest.raises(AnnotationError, match="out of range"):
        Checker(path).check(10 ** 400, "x", int)
