"""Text embeddings in the feature store, keyed by a stable hash of the string.

``texts/<text_set>/`` holds one group per *part* (one ``write_texts`` call); each part has ``keys [N, 20]``
(sha1 digests), ``pooled [N, D]``, optional ``tokens [N, L, D]`` + ``lengths [N]`` and the utf-8 strings
themselves (``text_bytes`` + ``text_offsets``) for provenance. Parts are append-only and marked ``complete``
last, so several encoders can add to a text set at once and a killed one leaves nothing visible.
"""
from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from egoflow.features_store.errors import FeatureSetMismatch, FeatureSetMissing, StoreError
from egoflow.features_store.layout import check_uid, config_hash


@dataclass
class TextFeatures:
    """``pooled [N, D]`` float32, ``tokens [N, L, D]`` float32 zero-padded (or None), ``lengths [N]`` int64."""

    pooled: np.ndarray
    tokens: np.ndarray | None
    lengths: np.ndarray | None


def text_key(s: str) -> bytes:
    return hashlib.sha1(s.encode("utf-8")).digest()


class TextSets:
    """The text-embedding half of a store: ``texts/`` under the store's ``root`` group (``url`` for messages).

    Keeps a per-object cache of each text set's key index (which part and row holds each string).
    """

    def __init__(self, root: zarr.Group, url: str):
        self.root, self.url = root, url
        self._index: dict[str, dict[bytes, tuple[str, int]]] = {}

    def _texts_root(self, create: bool = False) -> zarr.Group | None:
        if "texts" in self.root:
            return self.root["texts"]
        return self.root.create_group("texts") if create else None

    def names(self) -> list[str]:
        t = self._texts_root()
        return sorted(t.group_keys()) if t is not None else []

    def info(self, text_set: str) -> dict:
        return dict(self._text_set(text_set).attrs)

    def _text_set(self, text_set: str) -> zarr.Group:
        t = self._texts_root()
        if t is None or text_set not in t:
            raise FeatureSetMissing(f"text set {text_set!r} not in store {self.url}; have: {self.names() or 'none'}")
        return t[text_set]

    def write(self, text_set: str, strings: list[str], pooled: np.ndarray, tokens: np.ndarray | None = None,
                    lengths: np.ndarray | None = None, config: dict | None = None) -> int:
        """Add embeddings of ``strings`` to ``text_set``; strings already present are skipped. Returns #added."""
        check_uid(text_set)
        pooled = np.asarray(pooled, dtype=np.float32)
        n = len(strings)
        if pooled.ndim != 2 or pooled.shape[0] != n:
            raise StoreError(f"text set {text_set!r}: pooled must be [{n}, D], got {list(pooled.shape)}")
        if tokens is not None:
            tokens = np.asarray(tokens)
            lengths = np.asarray(lengths if lengths is not None else [tokens.shape[1]] * n, dtype=np.int64)
            if tokens.ndim != 3 or tokens.shape[0] != n or lengths.shape != (n,):
                raise StoreError(f"text set {text_set!r}: tokens must be [{n}, L, D] with lengths [{n}]")
        h = config_hash({"config": config or {}, "dim": pooled.shape[1]})
        root = self._texts_root(create=True)
        if text_set not in root:
            with contextlib.suppress(zarr.errors.ContainsGroupError):  # another encoder created it meanwhile
                root.create_group(text_set, attributes={"encoder": config or {}, "config_hash": h,
                                                        "dim": int(pooled.shape[1])})
        ts = root[text_set]
        if ts.attrs.get("config_hash") != h:
            raise FeatureSetMismatch(f"text set {text_set!r} in {self.url} was made with a different encoder config")
        # skip strings already stored (and duplicates within this call): encoding is idempotent per string
        have = self.lookup(text_set)
        keep, seen = [], set()
        for i, s in enumerate(strings):
            k = text_key(s)
            if k not in have and k not in seen:
                keep.append(i)
                seen.add(k)
        if not keep:
            return 0
        idx = np.asarray(keep)
        enc = [strings[i].encode("utf-8") for i in keep]
        part = ts.create_group(f"part-{uuid.uuid4().hex[:12]}", attributes={"complete": False, "count": len(keep)})
        zstd = [ZstdCodec(level=3)]
        part.create_array("keys", data=np.frombuffer(b"".join(text_key(strings[i]) for i in keep),
                                                      dtype=np.uint8).reshape(-1, 20))
        part.create_array("text_bytes", data=np.frombuffer(b"".join(enc) or b"\0", dtype=np.uint8), compressors=zstd)
        part.create_array("text_offsets", data=np.cumsum([0] + [len(e) for e in enc]).astype(np.int64))
        part.create_array("pooled", data=pooled[idx], compressors=zstd)
        if tokens is not None:
            L = max(1, int(lengths[idx].max()))
            part.create_array("tokens", data=tokens[idx, :L].astype(np.float16), chunks=(min(256, len(keep)), L,
                              tokens.shape[2]), compressors=zstd)
            part.create_array("lengths", data=lengths[idx])
        part.update_attributes({"complete": True})
        self._index.pop(text_set, None)
        return len(keep)

    def has_tokens(self, text_set: str) -> bool | None:
        """Whether the set's strings were stored with token sequences (None: no complete part yet)."""
        ts = self._text_set(text_set)
        parts = [ts[p] for p in sorted(ts.group_keys())]
        done = [p for p in parts if p.attrs.get("complete") is True]
        return None if not done else all("tokens" in p for p in done)

    def lookup(self, text_set: str) -> dict[bytes, tuple[str, int]]:
        """key -> (part name, row) over complete parts; cached per store object."""
        if text_set in self._index:
            return self._index[text_set]
        t = self._texts_root()
        index: dict[bytes, tuple[str, int]] = {}
        if t is not None and text_set in t:
            ts = t[text_set]
            for pname in sorted(ts.group_keys()):
                part = ts[pname]
                if part.attrs.get("complete") is not True:
                    continue
                for row, k in enumerate(np.asarray(part["keys"][:])):
                    index.setdefault(k.tobytes(), (pname, row))
        self._index[text_set] = index
        return index

    def has(self, text_set: str, strings: list[str]) -> list[bool]:
        idx = self.lookup(text_set)
        return [text_key(s) in idx for s in strings]

    def load(self, text_set: str, strings: list[str]) -> TextFeatures:
        """Embeddings of ``strings`` in order; KeyError naming the strings that were never encoded."""
        ts = self._text_set(text_set)
        idx = self.lookup(text_set)
        missing = [s for s in strings if text_key(s) not in idx]
        if missing:
            shown = ", ".join(repr(s) for s in missing[:5])
            raise KeyError(f"{len(missing)} string(s) have no embedding in text set {text_set!r} of {self.url} "
                           f"(run `egoflow encode-text`): {shown}{' …' if len(missing) > 5 else ''}")
        locs = [idx[text_key(s)] for s in strings]
        dim = int(ts.attrs["dim"])
        pooled = np.zeros((len(strings), dim), np.float32)
        by_part: dict[str, list[tuple[int, int]]] = {}
        for i, (p, r) in enumerate(locs):
            by_part.setdefault(p, []).append((i, r))
        parts = {p: ts[p] for p in by_part}
        has_tokens = all("tokens" in parts[p] for p in parts)
        if not has_tokens and any("tokens" in parts[p] for p in parts):
            raise StoreError(f"text set {text_set!r}: some strings were stored without token features")
        tok_chunks, lengths = {}, np.zeros(len(strings), np.int64)
        for p, pairs in by_part.items():
            out_rows = np.array([i for i, _ in pairs])
            rows = np.array([r for _, r in pairs])
            pooled[out_rows] = parts[p]["pooled"].get_orthogonal_selection((rows, slice(None)))
            if has_tokens:
                lengths[out_rows] = parts[p]["lengths"].get_orthogonal_selection((rows,))
                tok_chunks[p] = (out_rows,
                                 parts[p]["tokens"].get_orthogonal_selection((rows, slice(None), slice(None))))
        if not has_tokens:
            return TextFeatures(pooled, None, None)
        L = int(lengths.max()) if len(strings) else 0
        tdim = next(iter(tok_chunks.values()))[1].shape[2] if tok_chunks else dim
        tokens = np.zeros((len(strings), L, tdim), np.float32)
        for out_rows, t in tok_chunks.values():
            w = min(L, t.shape[1])
            tokens[out_rows, :w] = t[:, :w]
        tokens[np.arange(L)[None, :] >= lengths[:, None]] = 0.0  # padding is zero whatever the encoder left there
        return TextFeatures(pooled, tokens, lengths)

    def verify(self) -> list[str]:
        problems = []
        t = self._texts_root()
        for name in self.names():
            for pname in t[name].group_keys():
                part = t[name][pname]
                if part.attrs.get("complete") is True and part["keys"].shape[0] != part["pooled"].shape[0]:
                    problems.append(f"texts/{name}/{pname}: keys and pooled differ in length")
        return problems
