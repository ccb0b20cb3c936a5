"""Stores on object storage (``s3://``, ``gs://``, ...): fsspec options and clear errors.

Options reach the filesystem through fsspec's own configuration (``fsspec.config.conf[protocol]``), so every
store opened in the process gets them, including the ones a head opens itself. They come from, in order:
``--storage-options '{"endpoint_url": "http://minio:9000"}'`` (JSON, or ``@file.json``), fsspec's environment
variables (``FSSPEC_S3_ENDPOINT_URL=...`` or ``FSSPEC_S3='{"anon": false}'``, read when fsspec is imported),
and the storage library's own (for S3, botocore's ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``). Put credentials in the environment or a
profile, not in ``--storage-options``: options are passed as flow parameters, which Prefect stores and shows.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from egoflow.features_store.errors import StoreNotFound
from egoflow.features_store.store import FeatureStore, StoreError

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}
_PACKAGES = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs"}


def protocol(url: str) -> str | None:
    """``s3`` for ``s3://b/x.zarr``; None for a local path."""
    return str(url).split("://", 1)[0] if "://" in str(url) else None


def parse_storage_options(text: str | dict | None) -> dict:
    """JSON object text, ``@path.json``, a dict, or None -> dict (a clear error for anything else)."""
    if text is None or isinstance(text, dict):
        return dict(text or {})
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        opts = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"--storage-options must be a JSON object (or @file.json): {e}") from None
    if not isinstance(opts, dict):
        raise ValueError(f"--storage-options must be a JSON object, got {type(opts).__name__}")  # noqa: TRY004
    return opts


def apply_storage_options(url: str, options: dict | None) -> None:
    """Make ``options`` the defaults of ``url``'s fsspec filesystem in this process; check its package."""
    proto = protocol(url)
    if proto is None or proto in ("memory", "file"):
        return
    import fsspec

    try:
        fsspec.get_filesystem_class(proto)
    except ImportError as e:
        extra = EXTRAS.get(proto, proto)
        raise StoreError(f"{url}: the {proto}:// filesystem needs {_PACKAGES.get(extra, extra)} "
                         f"(pip install 'egoflow[{extra}]')") from e
    if options:
        fsspec.config.conf.setdefault(proto, {}).update(options)


def endpoint(url: str) -> str:
    """The endpoint ``url``'s filesystem talks to, as configured here (options, then the environment)."""
    import fsspec

    proto = protocol(url) or "file"
    conf = fsspec.config.conf.get(proto, {})
    found = conf.get("endpoint_url") or (conf.get("client_kwargs") or {}).get("endpoint_url")
    if proto in ("s3", "s3a"):
        found = found or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return found or f"the default {proto}:// endpoint"


def missing_store_message(url: str) -> str:
    """Why nothing is at ``url``: its bucket does not exist at the endpoint, or the bucket lacks the prefix."""
    import fsspec

    bucket, _, prefix = str(url).split("://", 1)[1].partition("/")
    try:
        has_bucket = fsspec.filesystem(protocol(url)).exists(bucket)
    except Exception:  # noqa: BLE001 - cannot tell (no listing rights, ...): the plain message
        return f"no feature store at {url}"
    if not has_bucket:
        return (f"bucket {bucket!r} does not exist at endpoint {endpoint(url)} (create it, e.g. `aws s3 mb "
                f"s3://{bucket}`, or check --storage-options / AWS_ENDPOINT_URL)")
    return (f"prefix {prefix!r} does not exist in bucket {bucket!r} at endpoint {endpoint(url)}: no feature store "
            f"at {url} (check the path, or write one with `egoflow extract`)")


def open_store(url: str, mode: str = "a", storage_options: dict | str | None = None) -> FeatureStore:
    """:class:`FeatureStore` with ``storage_options`` applied, and one-line errors for the usual remote
    failures (no credentials, unreachable endpoint, missing bucket or prefix) instead of a botocore traceback."""
    apply_storage_options(url, parse_storage_options(storage_options))
    try:
        return FeatureStore(url, mode=mode)
    except StoreNotFound as e:
        if protocol(url) in (None, "memory", "file"):
            raise
        raise StoreNotFound(missing_store_message(url)) from e
    except StoreError:
        raise
    except Exception as e:
        name = type(e).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            raise StoreError(f"{url}: no credentials for {protocol(url)}:// (set AWS_ACCESS_KEY_ID/"
                             "AWS_SECRET_ACCESS_KEY or AWS_PROFILE on this machine)") from e
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or \
                isinstance(e, (ConnectionError, TimeoutError)):
            raise StoreError(f"{url}: storage endpoint unreachable ({e})") from e
        if isinstance(e, FileNotFoundError):
            raise StoreNotFound(missing_store_message(url)) from e
        if isinstance(e, PermissionError):
            raise StoreError(f"{url}: {name}: {e} (access denied?)") from e
        raise


__all__ = ["apply_storage_options", "endpoint", "missing_store_message", "open_store", "parse_storage_options",
           "protocol"]
