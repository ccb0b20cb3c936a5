"""One video's group in a feature set, as every writer makes it (plain sets in store.py, query-conditioned sets in
conditioned.py): a fresh group replaces any earlier attempt, and a removal never leaves a complete video without
its arrays."""
from __future__ import annotations

import zarr

from egoflow.features_store.layout import SetGroup
from egoflow.features_store.packed import drop_pack


def remove_video(fs: SetGroup, uid: str) -> None:
    """Delete a video's group: "complete" is cleared FIRST, so a kill during the removal (which deletes files in
    no particular order) leaves an incomplete video to redo, never a complete one without arrays."""
    if (fs.video_attrs(uid) or {}).get("complete") is True:
        fs.group[uid].update_attributes({"complete": False})
    fs.delete(uid)


def fresh_video_group(fs: SetGroup, uid: str, attrs: dict) -> zarr.Group:
    """An empty group for ``uid`` with ``attrs``; an earlier incomplete/failed/stale attempt (maybe corrupt) is
    removed first, and the set's packed copy is dropped (the set changes)."""
    drop_pack(fs)
    if uid in fs.uids():
        remove_video(fs, uid)
    return fs.group.create_group(uid, attributes=attrs)
