"""One exception family for bad annotation and prediction files, plus careful file readers.

Every error names the file and the offending key path (``videos[3].clips[0].clip_uid``) or line, so that a user
with a 100 MB JSON file knows exactly where to look; readers raise these early instead of letting a KeyError
surface deep inside a metric or a model.
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Any


class AnnotationError(ValueError):
    """An annotation (ground-truth) file is missing, unreadable or malformed."""

    def __init__(self, path, where: str | None, message: str):
        self.path = str(path) if path is not None else None
        self.where = where
        self.message = message
        loc = ": ".join(x for x in (self.path, where) if x)
        super().__init__(f"{loc}: {message}" if loc else message)


class PredictionError(AnnotationError):
    """A predictions file is malformed or does not fit its ground truth (unknown uids, bad segments, ...)."""


def read_json(path, error=AnnotationError) -> Any:
    """Parse a JSON file; a missing file or a syntax error becomes ``error`` naming the file and line."""
    if not os.path.isfile(path):
        raise error(path, None, "file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise error(path, f"line {e.lineno} column {e.colno}", f"invalid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise error(path, None, f"not UTF-8 text ({e.reason})") from None


def read_csv_rows(path, required: tuple[str, ...], error=AnnotationError) -> list[dict[str, str]]:
    """Rows of a CSV file with a header; checks that the ``required`` columns exist."""
    if not os.path.isfile(path):
        raise error(path, None, "file not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise error(path, "line 1 (header)", f"missing column(s) {missing}; found {header}")
        try:
            return list(reader)
        except csv.Error as e:
            raise error(path, f"line {reader.line_num}", f"malformed CSV ({e})") from None


MAX_TIME = 1e9  # seconds (~32 years): larger "times" are corrupt values (1e308), never real video positions


def _short(value: Any) -> str:
    """repr of a value for an error line, cut so a 400-digit number or a huge object stays one short line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({type(value).__name__}, {len(text)} chars)"


class Checker:
    """Typed field access for nested JSON with key paths in the error messages."""

    def __init__(self, path, error=AnnotationError):
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

    def time(self, value: Any, where: str) -> float:
        """A time in seconds: a finite, plausible, non-negative number (predictions, windows, timestamps)."""
        t = self.check(value, where, float)
        if t < 0:
            self.fail(where, f"negative time {value!r}")
        return t

    def check(self, value: Any, where: str, kind: type | tuple):
        if kind is float:
            # JSON numbers may be ints; bools are not numbers here, and NaN/inf never make a valid time.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(where, f"expected a number, got {_short(value)}")
            try:
                number = float(value)
            except OverflowError:  # a 400-digit JSON integer: float() cannot hold it
                self.fail(where, f"number out of range ({len(str(value))} digits)")
            if not math.isfinite(number) or abs(number) > MAX_TIME:
                self.fail(where, f"expected a finite number of plausible size, got {_short(value)}")
            return number
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(where, f"expected an integer, got {_short(value)}")
        if kind is int and abs(value) > 2 ** 63:
            self.fail(where, f"integer out of range ({len(str(value))} digits)")
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(where, f"expected {name}, got {type(value).__name__}")
        return value
