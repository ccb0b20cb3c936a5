"""Claims: which writer is working on a video (or on the set's pack) right now, so concurrent writers never collide.

Several ``egoflow extract`` processes on one store without ``--shard`` (a normal thing to do by hand on a
multi-GPU box) reach the same videos. Each writer claims a video before decoding it: the claim is
``<set>/_claims/<uid>.json`` created exclusively (atomic on local disks: zarr links a finished temp file), then
re-read; the writer whose token is in it owns the video, the others skip it ("claimed by another writer") -
a race lost gracefully, never two writers deleting and creating one group. The claim is released when the
video is done or failed.

A killed writer leaves its claim behind. It is stale, and taken over, when its process is gone (same host:
``os.kill(pid, 0)`` fails) or it is older than ``STALE_AFTER_S`` (another host: its liveness cannot be seen).
fsspec stores (S3) check-then-write, so there two machines can both win a claim: shard by machine there.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid

from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync as _sync

CLAIMS = "_claims"  # <set>/_claims/: a "_" name, never a video uid nor listed as one
STALE_AFTER_S = 6 * 3600.0  # a claim of another host older than this is taken over (a killed writer's)
PACK_CLAIM = "_packed"  # claim name for packing the set (one packer at a time)


def _key(fs, name: str) -> str:
    return f"{fs.path}/{CLAIMS}/{name}.json"


def _read(fs, key: str) -> dict | None:
    buf = _sync(fs.store.get(key, prototype=default_buffer_prototype()))
    if buf is None:
        return None
    try:
        return json.loads(buf.to_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # being written by a non-atomic store, or a torn file: neither ours nor stale yet


def _stale(claim: dict) -> bool:
    if not claim:
        return False
    if claim.get("host") == socket.gethostname():
        try:
            os.kill(int(claim["pid"]), 0)
        except ProcessLookupError:
            return True  # its process is gone: killed or crashed
        except (PermissionError, KeyError, ValueError, TypeError):
            return False
        return False
    return time.time() - float(claim.get("time", time.time())) > STALE_AFTER_S


def acquire(fs, name: str) -> str | None:
    """Claim ``name`` in feature-set group ``fs``; return a token (release it with :func:`release`) or None
    when another live writer holds it."""
    key = _key(fs, name)
    token = uuid.uuid4().hex
    mine = {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    proto = default_buffer_prototype()
    for _ in range(2):  # second try after removing a stale claim
        _sync(fs.store.set_if_not_exists(key, proto.buffer.from_bytes(json.dumps(mine).encode())))
        have = _read(fs, key)
        if have is None:
            continue  # released between our write and our read: try again
        if have.get("token") == token:
            return token
        if not _stale(have):
            return None
        if (_read(fs, key) or {}).get("token") == have.get("token"):  # not already taken over by another
            _sync(fs.store.delete(key))
    return None


def release(fs, name: str, token: str | None) -> None:
    """Drop the claim if it is still ours (a takeover after we were presumed dead is left alone)."""
    if not token:
        return
    key = _key(fs, name)
    if (_read(fs, key) or {}).get("token") == token:
        _sync(fs.store.delete(key))


def holders(fs) -> list[dict]:
    """Current claims of a set (``egoflow store info`` can say who is writing)."""
    from egoflow.features_store.layout import _list_dir

    out = []
    for k in _sync(_list_dir(fs.store, f"{fs.path}/{CLAIMS}")):
        c = _read(fs, f"{fs.path}/{CLAIMS}/{k}")
        if c:
            out.append({"name": k.removesuffix(".json"), **c, "stale": _stale(c)})
    return out
