"""Which exceptions the CLI reports as a one-line error (bad input) rather than a traceback (a bug).

Set EGOFLOW_DEBUG=1 to get the traceback anyway.
"""
from __future__ import annotations

import os


class EgoflowUserError(Exception):
    """Base of egoflow's own bad-input errors (feature store, encoder): a one-line message, not a traceback.

    It lives here, at the bottom, so that this module imports nothing from the layers above it."""


def user_errors() -> tuple[type[BaseException], ...]:
    if os.environ.get("EGOFLOW_DEBUG"):
        return ()
    return (EgoflowUserError, FileNotFoundError, PermissionError, ValueError, KeyError)
