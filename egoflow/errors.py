"""Which exceptions the CLI reports as a one-line error (bad input) rather than a traceback (a bug).

Set EGOFLOW_DEBUG=1 to get the traceback anyway.
"""
from __future__ import annotations

import errno
import os

# Exit codes of every verb: 0 ok; 1 ran, but some videos/items failed (listed); 2 user error (bad input,
# one line naming file and key); 3 environment failure (disk full, read-only or unwritable store, I/O error).
EXIT_FAILED, EXIT_USER, EXIT_ENVIRONMENT = 1, 2, 3
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def is_environment_error(e: BaseException, store: str | None = None) -> bool:
    """Disk full / quota / read-only / I/O errors anywhere, and permission refusals inside the store."""
    if not isinstance(e, OSError):
        return False
    if e.errno in ENVIRONMENT_ERRNOS:
        return True
    if isinstance(e, PermissionError) and store and e.filename and "://" not in store:
        return os.path.abspath(str(e.filename)).startswith(os.path.abspath(store))
    return False


def describe(e: BaseException) -> str:
    """One line for an OSError: strerror and file, without the errno prefix noise."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)


class EgoflowUserError(Exception):
    """Base of egoflow's own bad-input errors (feature store, encoder): a one-line message, not a traceback.

    It lives here, at the bottom, so that this module imports nothing from the layers above it."""


def user_errors() -> tuple[type[BaseException], ...]:
    if os.environ.get("EGOFLOW_DEBUG"):
        return ()
    return (EgoflowUserError, FileNotFoundError, PermissionError, ValueError, KeyError)
