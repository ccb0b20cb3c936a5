"""Which exceptions the CLI reports as a one-line error (bad input) rather than a traceback (a bug).

Set EGOFLOW_DEBUG=1 to get the traceback anyway.
"""
from __future__ import annotations

import os


def user_errors() -> tuple[type[BaseException], ...]:
    if os.environ.get("EGOFLOW_DEBUG"):
        return ()
    from egoflow.features_store import StoreError

    errs: list[type[BaseException]] = [StoreError, FileNotFoundError, PermissionError, ValueError, KeyError]
    try:
        from egoflow.extract.clip import EncoderError

        errs.append(EncoderError)
    except ImportError:
        pass
    return tuple(errs)
