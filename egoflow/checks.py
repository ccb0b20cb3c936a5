"""The one input checker every reader uses: typed fields, plausible numbers, careful file reading.

Every failure is one line naming the file and the key path (``videos[3].clips[0].clip_uid``) or CSV row, raised
as ``error(path, where, message)`` (an ``InputFileError``: exit 2 in every command). It sits at the bottom layer
so that the annotation readers (``egoflow.datasets``) and the model-file readers (``egoflow.extract.fused``:
checkpoints, tokenizer folders) share it without extract knowing a benchmark.

The rules: numbers are finite and of plausible size (a 400-digit integer or 1e308 is a corrupt value, not a time),
times are non-negative, a window does not end before it starts nor past its clip, an integer fits 64 bits, text
files are UTF-8, a JSON object has no key twice (JSON parsers silently keep the last one).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from typing import Any

from egoflow.errors import EgoflowUserError

MAX_TIME = 1e9  # seconds (~32 years): larger "times" are corrupt values (1e308), never real video positions
MAX_SCORE = 1e30  # prediction scores: larger ones are corrupt (and overflow float32 to inf, i.e. ties)
MAX_INT = 2 ** 63  # integers (ids, class indices, frames) must fit an int64
MAX_DIGITS = 19  # digits of an integer written as text that can still fit an int64


class InputFileError(EgoflowUserError, ValueError):
    """An input file (annotations, predictions, weights) is missing, unreadable or malformed."""

    def __init__(self, path, where: str | None, message: str):
        self.path = str(path) if path is not None else None
        self.where = where
        self.message = message
        loc = ": ".join(x for x in (self.path, where) if x)
        super().__init__(f"{loc}: {message}" if loc else message)


def short(value: Any) -> str:
    """repr of a value for an error line, cut so a 400-digit number or a huge object stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # a >4300-digit int refuses str()
        return f"an integer of more than {MAX_DIGITS} digits"
    text = text.replace("\n", "\\n")
    return text if len(text) <= 60 else f"{text[:57]}... ({type(value).__name__}, {len(text)} chars)"


def one_line(e: BaseException, limit: int = 160) -> str:
    """``Type: message`` of an exception from a library (torch.load, tokenizers), cut to one short line."""
    text = " ".join(str(e).split()) or "no message"
    return f"{type(e).__name__}: {text if len(text) <= limit else text[:limit - 3] + '...'}"


def clip_tolerance(duration: float) -> float:
    """How far past its clip a window may end (rounding in the annotations): 1 s or 1% of the clip."""
    return max(1.0, 0.01 * duration)


def require_file(path, error=InputFileError, what: str = "file") -> str:
    if not os.path.exists(path):
        raise error(path, None, f"{what} not found")
    if not os.path.isfile(path):
        raise error(path, None, f"{what} not found (a folder, not a file)")
    return str(path)


def read_text(path, error=InputFileError) -> str:
    """A UTF-8 text file (a BOM is dropped); a missing or non-UTF-8 file is one error naming it."""
    require_file(path, error)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise error(path, f"line {line} (byte {e.start})", f"not UTF-8 text ({e.reason})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as open() in text mode


def read_lines(path, error=InputFileError) -> list[str]:
    """Lines of a UTF-8 text file, without their line ends."""
    return read_text(path, error).splitlines()


def read_json(path, error=InputFileError) -> Any:
    """Parse a JSON file; a missing file, a syntax error, a non-UTF-8 byte, a key given twice in one object or
    an integer too long to convert become ``error`` naming the file (and line where the parser knows it)."""
    return parse_json(read_text(path, error), path, error)


def parse_json(text: str, path, error=InputFileError, member: str | None = None) -> Any:
    """:func:`read_json` on text already read (e.g. a ``member`` of a zip, named in the error after the file)."""
    at = f"{member}: " if member else ""

    def pairs(items):
        out = dict(items)
        if len(out) != len(items):
            seen = set()
            dup = next(k for k, _ in items if k in seen or seen.add(k))
            raise error(path, f"{at}key {short(dup)}", "appears twice in one object (JSON would keep only the last)")
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise error(path, f"{at}line {e.lineno} column {e.colno}", f"invalid JSON ({e.msg})") from None
    except InputFileError:  # a key given twice (from the hook): already names the file
        raise
    except ValueError as e:  # Python refuses to convert an integer of more than 4300 digits, naming no file
        huge = re.search(r"\d{4000,}", text)
        if huge is None:
            raise error(path, member, f"invalid JSON ({e})") from None
        line = text[: huge.start()].count("\n") + 1
        raise error(path, f"{at}line {line}", f"integer of {len(huge.group())} digits (out of range)") from None
    except RecursionError:
        raise error(path, member, "JSON nested too deeply") from None


def read_csv_rows(path, required: tuple[str, ...], error=InputFileError) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV file with a header; checks that the ``required`` columns exist."""
    text = read_text(path, error)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise error(path, "line 1 (header)", f"missing column(s) {missing}; found {[short(h) for h in header]}")
    try:
        rows = list(reader)
    except csv.Error as e:
        raise error(path, f"line {reader.line_num}", f"malformed CSV ({e})") from None
    for n, r in enumerate(rows, start=2):
        if None in r:  # more fields than the header: a shifted row would read the wrong columns
            raise error(path, f"row {n}", f"{len(header) + len(r[None])} fields, the header has {len(header)}")
    return rows


class Checker:
    """Typed field access with key paths in the error messages; ``where`` is the key path (or row) of a value."""

    def __init__(self, path, error=InputFileError):
        self.path = path
        self.error = error

    def fail(self, where: str, message: str):
        raise self.error(self.path, where, message)

    def get(self, obj: Any, key, where: str, kind: type | tuple, optional: bool = False, default=None):
        """``obj[key]`` checked to be a ``kind``; ``where`` is the key path of ``obj``."""
        at = f"{where}.{key}" if where else str(key)
        if not isinstance(obj, dict):
            self.fail(where or "(top level)", f"expected an object, got {type(obj).__name__}")
        if key not in obj or obj[key] is None:
            if optional:
                return default
            self.fail(at, "missing key" if key not in obj else "is null")
        return self.check(obj[key], at, kind)

    def check(self, value: Any, where: str, kind: type | tuple):
        if kind is float:
            return self.number(value, where)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(where, f"expected an integer, got {short(value)}")
        if kind is int and abs(value) > MAX_INT:
            self.fail(where, f"integer out of range ({len(str(value))} digits)")
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(where, f"expected {name}, got {type(value).__name__} {short(value)}")
        return value

    def number(self, value: Any, where: str, limit: float = MAX_TIME) -> float:
        """A finite JSON number (ints allowed, bools not) of magnitude <= ``limit``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"expected a number, got {short(value)}")
        try:
            number = float(value)
        except OverflowError:  # a 400-digit JSON integer: float() cannot hold it
            self.fail(where, f"number out of range ({len(str(value))} digits)")
        if not math.isfinite(number) or abs(number) > limit:
            self.fail(where, f"expected a finite number of plausible size, got {short(value)}")
        return number

    def score(self, value: Any, where: str) -> float:
        """A prediction score: finite, |score| <= MAX_SCORE."""
        return self.number(value, where, MAX_SCORE)

    def time(self, value: Any, where: str) -> float:
        """A time in seconds: a finite, plausible, non-negative number (predictions, windows, timestamps)."""
        t = self.number(value, where)
        if t < 0:
            self.fail(where, f"negative time {value!r}")
        return t

    def window(self, start: float, end: float, where: str, duration: float | None = None) -> None:
        """``start <= end`` and, given the clip's ``duration``, ``end`` inside the clip (with its tolerance)."""
        if end < start:
            self.fail(where, f"window ends before it starts ({start:g} > {end:g})")
        if duration is not None and end > duration + clip_tolerance(duration):
            self.fail(where, f"window ends at {end:g} s, past the end of its {duration:g} s clip")

    def int_text(self, text: str, where: str, minimum: int | None = 0, what: str = "an integer") -> int:
        """An integer written as text (CSV cell, file line): at most MAX_DIGITS digits, >= ``minimum``."""
        t = str(text).strip()
        digits = t[1:] if t[:1] in "+-" else t
        if not digits.isdigit() or not digits.isascii():
            self.fail(where, f"expected {what}, got {short(text)}")
        if len(digits) > MAX_DIGITS:
            self.fail(where, f"integer out of range ({len(digits)} digits)")
        value = int(t)
        if minimum is not None and value < minimum:
            self.fail(where, f"negative value {value}" if minimum == 0 else f"{value} is below {minimum}")
        return value

    def time_text(self, text: str, where: str) -> float:
        """A time in seconds written as text: finite, plausible, non-negative."""
        try:
            value = float(str(text).strip())
        except ValueError:
            self.fail(where, f"expected a time in seconds, got {short(text)}")
        return self.time(value, where)

    def unique(self, seen: set, key, where: str, what: str = "id") -> None:
        """``key`` not yet in ``seen`` (then added): a duplicated id would silently replace the first."""
        if key in seen:
            self.fail(where, f"{what} {short(key)} appears twice")
        seen.add(key)
