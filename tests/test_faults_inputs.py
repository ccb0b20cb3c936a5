"""Fault classes 2 and 3 (issue 12): one file never stops the run, and nothing found is skipped silently.

Camera/phone file names that are not valid uids get a derived, stable uid; an unreadable folder, a path that
cannot be checked, a broken symbolic link and a uid clash are each a per-video failure (exit 1), the other
videos complete. The tests run as root in CI, where chmod 000 is not enforced, so permission refusals are
faked by making ``os.scandir`` / ``Path.is_dir`` raise PermissionError for the locked path (what a normal
user's process gets). Encoder: the random-init tiny test config.
"""
import errno
import os
from pathlib import Path

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.discover import discover, video_uid
from egoflow.features_store import FeatureStore

TINY = "egoflow-tiny-ViT"
ARGS = ["--model", TINY, "--fps", "1", "--quiet", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("src") / "c.mp4", [(0, 2, "red kettle")], fps=10, size=(32, 32)).path


def _copy(clip, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clip.read_bytes())
    return path


def test_derived_uids_are_valid_stable_and_distinct():
    cases = ["GH010034 (1)", "vidéo", "IMG 0042", "日本語", "a b", "a_b", "texts", "-lead", "ok-name_1.x"]
    uids = [video_uid(Path(c + ".mp4")) for c in cases]
    from egoflow.features_store.store import check_uid

    for u in uids:
        check_uid(u)
    assert uids[-1] == "ok-name_1.x"  # valid stems are unchanged (Ego4D <video_uid>.mp4)
    assert uids[0].startswith("GH010034_1-") and uids[1].startswith("video-") and uids[3].startswith("video-")
    assert len(set(uids)) == len(uids)  # "a b" vs "a_b", "texts" (reserved) vs anything
    assert video_uid(Path("vidéo.mp4")) == uids[1]  # stable
    import unicodedata

    assert video_uid(Path(unicodedata.normalize("NFD", "vidéo") + ".mp4")) == uids[1]  # macOS decomposed names


def test_camera_names_never_abort_the_run(clip, tmp_path, capsys):
    d = tmp_path / "in"
    for name in ["GH010034 (1).MP4", "vidéo.mp4", "a b.mp4", "plain.mp4"]:
        _copy(clip, d / name)
    url = str(tmp_path / "s.zarr")
    assert main(["extract", str(d), "--store", url, *ARGS]) == 0
    out = capsys.readouterr().out
    assert "done 4, skipped 0, failed 0" in out
    store = FeatureStore(url)
    (name,) = store.feature_sets()
    uids = store.videos(name)
    assert len(uids) == 4 and "plain" in uids and any(u.startswith("GH010034_1-") for u in uids)
    paths = {Path(store.video_attrs(name, u)["source"]["path"]).name for u in uids}
    assert "GH010034 (1).MP4" in paths and "vidéo.mp4" in paths  # the original name is kept in the attrs
    assert main(["extract", str(d), "--store", url, *ARGS]) == 0  # rerun: same uids, all skipped
    assert "skipped 4" in capsys.readouterr().out


def test_uid_clash_is_a_failure_not_an_abort(clip, tmp_path, capsys):
    a = _copy(clip, tmp_path / "x" / "same.mp4")
    b = _copy(clip, tmp_path / "y" / "same.mp4")
    url = str(tmp_path / "s.zarr")
    assert main(["extract", str(a), str(b), "--store", url, *ARGS]) == 1
    out = capsys.readouterr().out
    assert "done 1, skipped 0, failed 1" in out and "already taken" in out and str(b) in out


def _deny(monkeypatch, locked: Path):
    """Make this process behave like a non-root user facing a chmod-000 folder ``locked``."""
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    def stat(path, *a, **kw):
        if locked in Path(os.fsdecode(path)).parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)


def test_unreadable_subfolder_is_listed_as_a_failure(clip, tmp_path, monkeypatch, capsys):
    d = tmp_path / "in"
    _copy(clip, d / "ok.mp4")
    _copy(clip, d / "locked" / "hidden.mp4")
    (d / "locked").chmod(0o000)
    try:
        _deny(monkeypatch, d / "locked")
        paths, failures = discover([str(d)])
        assert [p.name for p in paths] == ["ok.mp4"]
        assert len(failures) == 1 and "cannot list folder" in failures[0].reason and "locked" in failures[0].reason
        rc = main(["extract", str(d), "--store", str(tmp_path / "s.zarr"), *ARGS])
    finally:
        (d / "locked").chmod(0o755)
    out = capsys.readouterr().out
    assert rc == 1 and "done 1, skipped 0, failed 1" in out and "not seen" in out


def test_explicit_path_in_unreadable_folder_is_a_failure(clip, tmp_path, monkeypatch, capsys):
    ok = _copy(clip, tmp_path / "ok.mp4")
    hidden = _copy(clip, tmp_path / "locked" / "hidden.mp4")
    _deny(monkeypatch, tmp_path / "locked")
    rc = main(["extract", str(hidden), str(ok), "--store", str(tmp_path / "s.zarr"), *ARGS])
    out = capsys.readouterr().out
    assert rc == 1 and "done 1, skipped 0, failed 1" in out and "Permission denied" in out and "hidden" in out


def test_dangling_symlink_is_a_failure(clip, tmp_path, capsys):
    d = tmp_path / "in"
    _copy(clip, d / "ok.mp4")
    (d / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    url = str(tmp_path / "s.zarr")
    rc = main(["extract", str(d), "--store", url, *ARGS])
    out = capsys.readouterr().out
    assert rc == 1 and "done 1, skipped 0, failed 1" in out and "broken symbolic link" in out
    store = FeatureStore(url)
    (name,) = store.feature_sets()
    assert [f["video_uid"] for f in store.failures(name)] == ["gone"]
