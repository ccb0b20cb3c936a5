"""One exception family for bad annotation and prediction files, plus the shared checker bound to it.

Every error names the file and the offending key path (``videos[3].clips[0].clip_uid``) or line, so that a user
with a 100 MB JSON file knows exactly where to look; readers raise these early instead of letting a KeyError
surface deep inside a metric or a model. The rules themselves live in ``egoflow.checks`` (one checker for the
annotation readers here and the model-file readers of ``egoflow.extract``).
"""
from __future__ import annotations

from typing import Any

from egoflow import checks
from egoflow.checks import MAX_TIME, InputFileError, short

__all__ = ["AnnotationError", "PredictionError", "Checker", "read_json", "read_csv_rows", "read_lines", "MAX_TIME",
           "short"]


class AnnotationError(InputFileError):
    """An annotation (ground-truth) file is missing, unreadable or malformed."""


class PredictionError(AnnotationError):
    """A predictions file is malformed or does not fit its ground truth (unknown uids, bad segments, ...)."""


class Checker(checks.Checker):
    """The shared checker raising ``AnnotationError`` unless told otherwise."""

    def __init__(self, path, error=AnnotationError):
        super().__init__(path, error)


def read_json(path, error=AnnotationError) -> Any:
    """Parse a JSON file (``egoflow.checks.read_json``): errors name the file."""
    return checks.read_json(path, error)


def read_csv_rows(path, required: tuple[str, ...], error=AnnotationError) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV file with a header; checks that the ``required`` columns exist."""
    return checks.read_csv_rows(path, required, error)


def read_lines(path, error=AnnotationError) -> list[str]:
    """Lines of a UTF-8 text file; a missing or non-UTF-8 file names the file."""
    return checks.read_lines(path, error)
