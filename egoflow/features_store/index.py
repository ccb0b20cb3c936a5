"""Nearest-neighbour search over a feature set's steps (or a text set): "where in which video does this happen".

An inner-product index (cosine when vectors are L2-normalised, the default) maps each row to ``(label, time)``:
``label`` is the video uid and ``time`` the step's time in seconds for a feature set, or the string (time NaN)
for a text set. faiss is used when installed (on the GPU when faiss has one), numpy brute force otherwise; both
give the same hits. An index is saved next to a local store as ``<store>.index/<name>/`` with the feature set's
config hash, so a stale index (set re-made with another config, videos added) is detected on load.

Large feature sets (``approx_min_rows`` steps and more, default the measured crossover
``ann.APPROX_MIN_ROWS``) get an approximate index instead (``ann.py``: IVF + PQ fast-scan candidates re-scored
exactly from the stored float16 vectors, memory-mapped); ``exact=True`` forces the flat one. ``index.json`` records
how the index was built (``build``: type, parameters, rows, dim, seconds, the set's config hash).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoflow.features_store import ann
from egoflow.features_store.store import FeatureStore, StoreError

try:
    import faiss
except ImportError:  # faiss-cpu is a dependency, but search must still work without it
    faiss = None


class SearchIndexError(StoreError):
    """The index cannot be built, saved, loaded or queried as asked (dim mismatch, stale, remote store)."""


@dataclass
class SearchResult:
    scores: np.ndarray  # [Q, k] float32 inner products (cosine when normalised), best first; -inf where no hit
    rows: np.ndarray  # [Q, k] int64 row ids; -1 where the index has fewer than k rows
    labels: list  # [Q][k] video uid (feature set) or string (text set); None where no hit
    times: np.ndarray  # [Q, k] float64 seconds of the step (NaN for text rows / no hit)

    def hits(self, q: int = 0) -> list[tuple[str, float, float]]:
        """``(label, time, score)`` of query ``q``, best first."""
        return [(lab, float(t), float(s)) for lab, t, s in zip(self.labels[q], self.times[q], self.scores[q])
                if lab is not None]


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class FeatureIndex:
    """Inner-product index over ``[N, D]`` vectors with a ``(label, time)`` per row."""

    def __init__(self, dim: int, normalize: bool = True, backend: str = "auto", device: str = "auto"):
        if backend not in ("auto", "faiss", "numpy"):
            raise SearchIndexError(f"backend must be auto|faiss|numpy, not {backend!r}")
        if backend == "faiss" and faiss is None:
            raise SearchIndexError("backend 'faiss' asked for but faiss is not installed (pip install faiss-cpu)")
        self.dim, self.normalize = int(dim), normalize
        self.backend = "faiss" if (backend == "faiss" or (backend == "auto" and faiss is not None)) else "numpy"
        self.device = device
        self.labels = np.zeros(0, dtype=object)  # [N]
        self.times = np.zeros(0, dtype=np.float64)  # [N]
        self.info: dict = {}  # provenance: store, set, config_hash, videos (for staleness checks)
        self._vectors = np.zeros((0, self.dim), np.float32)  # numpy backend only
        self._index = None
        self.kind = "flat"  # or "ivfpq": the approximate index of ann.py (built by from_feature_set)
        self.params: ann.AnnParams | None = None  # the approximate index's parameters
        self.build: dict = {}  # how the index was built: type, params, rows, dim, build_s, config_hash
        self._vectors16 = None  # [N, D] float16 normalised rows the approximate index re-scores with
        if self.backend == "faiss":
            self._index = faiss.IndexFlatIP(self.dim)
            if device in ("auto", "cuda") and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
                self._res = faiss.StandardGpuResources()  # kept alive as long as the GPU index
                self._index = faiss.index_cpu_to_gpu(self._res, 0, self._index)
            elif device == "cuda":
                raise SearchIndexError("device 'cuda' asked for but faiss has no GPU here")

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, vectors: np.ndarray, labels, times=None) -> None:
        """Add ``vectors [N, D]`` with ``labels [N]`` and ``times [N]`` seconds (NaN when None)."""
        if self.kind != "flat":
            raise SearchIndexError("an approximate index is built whole from a feature set: add() needs a flat one")
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise SearchIndexError(f"vectors must be [N, {self.dim}], got {list(v.shape)}")
        labels = np.asarray(list(labels), dtype=object)
        t = np.full(len(v), np.nan) if times is None else np.asarray(times, dtype=np.float64)
        if labels.shape != (len(v),) or t.shape != (len(v),):
            raise SearchIndexError(f"need one label and one time per vector ({len(v)})")
        if not np.isfinite(v).all():
            raise SearchIndexError("vectors contain NaN or inf")
        if self.normalize:
            v = _normalise(v)
        if self.backend == "faiss":
            self._index.add(v)
        else:
            self._vectors = np.concatenate([self._vectors, v])
        self.labels = np.concatenate([self.labels, labels])
        self.times = np.concatenate([self.times, t])

    def search(self, queries: np.ndarray, k: int = 10) -> SearchResult:
        """Top-``k`` rows for each of ``queries [Q, D]`` (or one ``[D]``) by inner product, best first."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise SearchIndexError(f"queries must be [Q, {self.dim}] (the index dim), got {list(q.shape)}")
        if self.normalize:
            q = _normalise(q)
        kk = min(k, len(self))
        if kk == 0:
            scores, rows = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        elif self.kind == "ivfpq":
            scores, rows = ann.search(self._index, self._vectors16, q, kk, self.params.nprobe, self.params.rerank)
        elif self.backend == "faiss":
            scores, rows = self._index.search(q, kk)
        else:
            scores, rows = _brute_force(self._vectors, q, kk)
        pad = k - kk  # fewer rows than k: pad like faiss does (-1 rows)
        scores = np.pad(scores.astype(np.float32), ((0, 0), (0, pad)), constant_values=-np.inf)
        rows = np.pad(rows.astype(np.int64), ((0, 0), (0, pad)), constant_values=-1)
        ok = rows >= 0
        labels = [[self.labels[r] if r >= 0 else None for r in row] for row in rows]
        times = np.where(ok, self.times[np.where(ok, rows, 0)] if len(self) else np.nan, np.nan)
        return SearchResult(scores, rows, labels, times)

    def search_texts(self, store: FeatureStore, text_set: str, strings: list[str], k: int = 10) -> SearchResult:
        """Search with the stored pooled embeddings of ``strings`` (e.g. NLQ queries) from ``text_set``."""
        return self.search(store.load_texts(text_set, strings).pooled, k)

    # ---------------------------------------------------------------- building from the store
    @classmethod
    def from_feature_set(cls, store: FeatureStore, feature_set: str, video_uids=None, normalize: bool = True,
                         backend: str = "auto", device: str = "auto", batch: int = 256, exact: bool = False,
                         approx_min_rows: int = ann.APPROX_MIN_ROWS) -> FeatureIndex:
        """One row per step of every (given) complete video; rows in video order, then time order. An
        approximate index when the set has ``approx_min_rows`` steps or more (and faiss), unless ``exact``."""
        t0 = time.perf_counter()
        info = store.feature_set_info(feature_set)
        ix = cls(info["dim"], normalize, backend, device)
        uids = store.videos(feature_set) if video_uids is None else list(video_uids)
        n = sum(int((store.video_attrs(feature_set, u) or {}).get("num_steps", 0)) for u in uids)
        approx = not exact and ix.backend == "faiss" and n >= approx_min_rows
        vec16, labels, times, at = (np.empty((n, ix.dim), np.float16) if approx else None), [], [], 0
        for i in range(0, len(uids), batch):  # bounded memory: a batch of videos at a time
            for uid, vf in store.load_feature_set(feature_set, uids[i:i + batch]).items():
                if not approx:
                    ix.add(vf.feats, [uid] * len(vf.times), vf.times)
                    continue
                v = np.asarray(vf.feats, np.float32)
                vec16[at:at + len(v)] = _normalise(v) if normalize else v
                labels.append(np.full(len(v), uid, dtype=object))
                times.append(np.asarray(vf.times, np.float64))
                at += len(v)
        if approx:
            ix._build_approx(vec16[:at], np.concatenate(labels), np.concatenate(times))
        ix.info = {"store": store.url, "feature_set": feature_set, "config_hash": info.get("config_hash"),
                   "videos": len(uids), "steps": len(ix)}
        ix.build = {"type": ix.kind, "params": ix.params.as_dict() if ix.params else {}, "rows": len(ix),
                    "dim": ix.dim, "build_s": round(time.perf_counter() - t0, 3),
                    "config_hash": info.get("config_hash"), "approx_min_rows": approx_min_rows}
        return ix

    def _build_approx(self, vec16: np.ndarray, labels: np.ndarray, times: np.ndarray) -> None:
        if not np.isfinite(vec16).all():
            raise SearchIndexError("vectors contain NaN or inf")
        self.kind, self.params = "ivfpq", ann.choose_params(len(vec16), self.dim)
        self._index, _ = ann.build(vec16, self.params)
        self._vectors16, self.labels, self.times = vec16, labels, times

    @classmethod
    def from_text_set(cls, store: FeatureStore, text_set: str, strings: list[str], normalize: bool = True,
                      backend: str = "auto", device: str = "auto") -> FeatureIndex:
        """One row per string (pooled embedding); search it with frame features to caption / classify steps."""
        pooled = store.load_texts(text_set, strings).pooled
        ix = cls(pooled.shape[1], normalize, backend, device)
        ix.add(pooled, strings)
        ix.info = {"store": store.url, "text_set": text_set,
                   "config_hash": store.text_set_info(text_set).get("config_hash"), "videos": None}
        return ix

    # ---------------------------------------------------------------- persistence (local only)
    @staticmethod
    def default_path(store: FeatureStore, name: str) -> Path:
        """``<store>.index/<name>`` beside a local store; remote stores need an explicit local path."""
        url = store.url[len("file://"):] if store.url.startswith("file://") else store.url
        if "://" in url:
            raise SearchIndexError(f"store {store.url} is not local: give the index a local path to save to")
        p = Path(url)
        return p.parent / f"{p.name}.index" / name

    def save(self, path) -> Path:
        """Write ``vectors.npy`` (normalised rows, the whole flat index), ``rows.npz`` and ``index.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if (path / "index.json").exists():
            (path / "index.json").unlink()  # a half-rewritten index must not pass for the old one
        if self.kind == "ivfpq":  # float16 rows (read memory-mapped) + the faiss codes
            np.save(path / "vectors.npy", np.asarray(self._vectors16, np.float16))
            faiss.write_index(self._index, str(path / "ivfpq.faiss"))
        else:
            (path / "ivfpq.faiss").unlink(missing_ok=True)
            np.save(path / "vectors.npy", self._vectors if self.backend == "numpy" else self._faiss_vectors())
        np.savez(path / "rows.npz", labels=self.labels.astype(str), times=self.times)
        meta = {"dim": self.dim, "normalize": self.normalize, "rows": len(self), **self.info,
                "build": self.build or {"type": self.kind, "rows": len(self), "dim": self.dim}}
        tmp = path / ".index.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path / "index.json")  # last: a half-written index has no index.json
        return path

    def _faiss_vectors(self) -> np.ndarray:
        cpu = faiss.index_gpu_to_cpu(self._index) if "Gpu" in type(self._index).__name__ else self._index
        return cpu.reconstruct_n(0, cpu.ntotal) if cpu.ntotal else np.zeros((0, self.dim), np.float32)

    @classmethod
    def load(cls, path, store: FeatureStore | None = None, backend: str = "auto",
             device: str = "auto") -> FeatureIndex:
        """Read an index saved by :meth:`save`; with ``store`` given, raise if it no longer matches the set."""
        path = Path(path)
        if not (path / "index.json").exists():
            raise SearchIndexError(f"no index at {path} (missing index.json)")
        meta = json.loads((path / "index.json").read_text())
        if store is not None:
            _check_fresh(meta, store, path)
        ix = cls(meta["dim"], meta["normalize"], backend, device)
        rows = np.load(path / "rows.npz")
        build = meta.get("build", {})
        if build.get("type") == "ivfpq":
            if faiss is None:
                raise SearchIndexError(f"index at {path} is approximate (faiss) but faiss is not installed")
            ix.kind, ix.params, ix.build = "ivfpq", ann.AnnParams(**build["params"]), build
            ix._index = faiss.read_index(str(path / "ivfpq.faiss"))
            ix._vectors16 = np.load(path / "vectors.npy", mmap_mode="r")
            ix.labels, ix.times = rows["labels"].astype(object), rows["times"]
            ix.info = {k: v for k, v in meta.items() if k not in ("dim", "normalize", "rows", "build")}
            return ix
        vec = np.load(path / "vectors.npy")
        normalize, ix.normalize = ix.normalize, False  # rows are stored normalised already
        ix.add(vec, rows["labels"].astype(object), rows["times"])
        ix.normalize = normalize
        ix.info = {k: v for k, v in meta.items() if k not in ("dim", "normalize", "rows", "build")}
        ix.build = build
        return ix

    @classmethod
    def for_feature_set(cls, store: FeatureStore, feature_set: str, path=None, rebuild: bool = False,
                        **kw) -> FeatureIndex:
        """Load the saved index of ``feature_set`` when it is fresh and of the kind asked for (``exact`` /
        ``approx_min_rows``, see :meth:`from_feature_set`), else build and save it."""
        path = Path(path) if path is not None else cls.default_path(store, feature_set)
        if not rebuild and (path / "index.json").exists():
            try:
                ix = cls.load(path, store, kw.get("backend", "auto"), kw.get("device", "auto"))
                if ix.kind == _wanted_kind(ix, kw):
                    return ix
            except SearchIndexError:
                pass  # stale: rebuild below
        ix = cls.from_feature_set(store, feature_set, **kw)
        ix.save(path)
        return ix


def _wanted_kind(ix: FeatureIndex, kw: dict) -> str:
    """The kind ``from_feature_set(**kw)`` would build for the rows ``ix`` has."""
    approx = (not kw.get("exact", False) and ix.backend == "faiss"
              and len(ix) >= kw.get("approx_min_rows", ann.APPROX_MIN_ROWS))
    return "ivfpq" if approx else "flat"


def _check_fresh(meta: dict, store: FeatureStore, path: Path) -> None:
    name = meta.get("feature_set")
    if name is None:
        return  # text-set indexes are keyed by their strings; nothing cheap to compare
    have = store.feature_set_info(name).get("config_hash")
    n = len(store.videos(name))
    steps = store.info(name)["steps"] if "steps" in meta else None  # a video re-written with other steps
    if have != meta.get("config_hash") or n != meta.get("videos") or steps != meta.get("steps"):
        raise SearchIndexError(f"index at {path} is stale for {store.url}/{name} (config {meta.get('config_hash')}"
                               f" vs {have}, videos {meta.get('videos')} vs {n}, steps {meta.get('steps')} vs "
                               f"{steps}): rebuild it")


def _brute_force(vectors: np.ndarray, q: np.ndarray, k: int, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products, scanning ``vectors`` in chunks so ``[Q, N]`` scores never materialise."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_r = np.zeros((len(q), 0), np.int64)
    for s in range(0, len(vectors), chunk):
        sc = q @ vectors[s:s + chunk].T
        cand_s = np.concatenate([best_s, sc], axis=1)
        cand_r = np.concatenate([best_r, np.broadcast_to(np.arange(s, s + sc.shape[1]), sc.shape)], axis=1)
        top = np.argpartition(-cand_s, min(k, cand_s.shape[1]) - 1, axis=1)[:, :k]
        best_s, best_r = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_r, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_r, order, 1)
