"""Which video files a run sees, and the uid each one is stored under.

Nothing found is dropped silently and nothing found stops the run: a folder that cannot be listed, a path
that cannot be checked, a broken symbolic link or two files claiming one uid each become a per-video failure
(listed in the summary, exit 1); the other videos are extracted.

Video uids. Ego4D names files ``<video_uid>.mp4``, so a stem that is a valid uid (letters, digits, ``.``,
``_``, ``-``, starting with a letter or digit) IS the uid, unchanged. Camera and phone names are often not
(``GH010034 (1).MP4``, ``vidéo.mp4``, ``IMG 0042.mov``): their uid is derived, stably, as

    ascii(NFKD(stem)) with every run of other characters -> "_", trimmed, at most 80 characters
    + "-" + the first 8 hex digits of sha1(NFC(stem))

e.g. ``GH010034 (1)`` -> ``GH010034_1-<hash>`` and ``vidéo`` -> ``video-<hash>``. The hash keeps names that
differ only in dropped characters apart (``a b`` vs ``a_b``) and is the same on every machine (NFC first:
macOS stores decomposed names). Collisions are still checked: the second file is a failure, never a merge.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

from egoflow.checks import InputFileError, read_lines

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
RESERVED = {"texts"}  # store names that are not videos (features_store.store.RESERVED)


class InputError(ValueError):
    pass


class _ListError(InputFileError, InputError):
    """A video list (.txt/.lst) that is not UTF-8 text."""


def video_uid(path) -> str:
    """The stem when it is a valid uid (Ego4D ``<video_uid>.mp4``), else the derived uid (module docstring)."""
    stem = Path(path).stem
    if _VALID.match(stem) and stem not in RESERVED:
        return stem
    base = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")[:80].strip("._-") or "video"
    digest = hashlib.sha1(unicodedata.normalize("NFC", stem).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{base}-{digest[:8]}"


def _failure(path, reason: str, uid: str | None = None):
    from egoflow.extract.results import VideoResult

    return VideoResult(uid or video_uid(path), "failed", str(path), stage="open", reason=reason)


def _walk(root: Path, failures: list) -> list[Path]:
    """Video files under ``root`` (recursive, symlinked folders not followed, like ``Path.rglob``)."""
    found: list[Path] = []

    def unreadable(err: OSError) -> None:
        where = err.filename or root
        failures.append(_failure(where, f"cannot list folder {where}: {err.strerror or err} "
                                        "(videos inside it are not seen)", uid=f"{Path(where).name}/"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames.sort()
        for name in filenames:
            q = Path(dirpath) / name
            if q.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if q.is_file() or (q.is_symlink() and not q.exists()):  # broken links: a failure, not nothing
                found.append(q)
    return sorted(found)


def discover(inputs) -> tuple[list[Path], list]:
    """(video paths, failures as ``VideoResult``) from files, directories (recursive) and ``.txt``/``.lst``
    lists (one path per line). A missing list file is a user error (InputError); everything else found is
    either a path to extract or a failure."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out: list[Path] = []
    failures: list = []
    for item in inputs:
        p = Path(item)
        try:
            if p.is_dir():
                out += _walk(p, failures)
            elif p.suffix.lower() in (".txt", ".lst"):
                if not p.exists():
                    raise InputError(f"video list {p} does not exist")
                lines = [ln.strip() for ln in read_lines(p, _ListError)]  # non-UTF-8: one line naming the list
                out += [Path(ln) if os.path.isabs(ln) else p.parent / ln for ln in lines
                        if ln and not ln.startswith("#")]
            else:
                out.append(p)  # may be missing: recorded as the video's failure, not a crash of the run
        except OSError as e:  # e.g. a path inside a folder this user cannot enter
            failures.append(_failure(p, f"cannot access {p}: {e.strerror or e}"))
    seen: dict[str, Path] = {}
    for p in out:
        uid = video_uid(p)
        if uid in seen:
            try:
                same = seen[uid].resolve() == p.resolve()
            except OSError:
                same = False
            if not same:
                failures.append(_failure(p, f"video_uid {uid!r} is already taken by {seen[uid]}; rename one"))
            continue
        seen[uid] = p
    return list(seen.values()), failures


def discover_videos(inputs) -> list[Path]:
    """Video paths only (see :func:`discover`); problems found while looking raise InputError."""
    paths, failures = discover(inputs)
    if failures:
        raise InputError("; ".join(f"{f.path}: {f.reason}" for f in failures))
    return paths


def source_info(path: Path) -> dict:
    """What identifies a video's content for resuming: resolved path, size, modification time (one stat)."""
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime": int(st.st_mtime)}
