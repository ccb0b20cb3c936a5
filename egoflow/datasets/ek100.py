"""Reader for EPIC-Kitchens-100 multi-instance retrieval (``retrieval_annotations/`` of the annotations repo).

    EPIC_100_retrieval_{split}.csv            one row per video segment: narration_id, video_id, start/stop
                                              timestamps, narration, ...  (row order = relevancy rows)
    EPIC_100_retrieval_{split}_sentence.csv   unique captions: narration_id, narration   (order = relevancy columns)
    relevancy/caption_relevancy_EPIC_100_retrieval_{split}.pkl    float matrix [videos, sentences]

The relevancy matrix and the challenge submission (dict with ``sim_mat`` [videos, texts], ``vis_ids``,
``txt_ids``) are pickles; they are read with an unpickler that only builds numpy/pandas containers.
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.errors import AnnotationError, PredictionError, read_csv_rows, short


@dataclass
class MIRSplit:
    """One EK-100 MIR split: segment and caption ids in relevancy order, captions, relevancy [V, T]."""

    video_ids: list[str]  # narration_id of each video segment (relevancy rows)
    text_ids: list[str]  # narration_id of each unique caption (relevancy columns)
    texts: list[str]  # the captions
    relevancy: np.ndarray  # float [V, T] in [0, 1]; 1 = the segment's own caption class


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy / pandas / builtin containers: these files come from the web."""

    def find_class(self, module, name):
        root = module.split(".")[0]
        if root in ("numpy", "pandas") or (module in ("builtins", "collections", "copyreg", "datetime") and
                                            name in ("dict", "list", "tuple", "set", "frozenset", "slice", "range",
                                                     "complex", "OrderedDict", "_reconstructor", "object",
                                                     "datetime", "timezone", "timedelta", "date")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_pickle(path, error=AnnotationError):
    if not os.path.isfile(path):
        raise error(path, None, "file not found")
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(io.BytesIO(f.read())).load()
    except ModuleNotFoundError as e:
        raise error(path, None, f"needs {e.name} to unpickle (pip install {e.name})") from None
    except Exception as e:  # corrupt/truncated pickles raise many different types
        raise error(path, None, f"cannot unpickle ({type(e).__name__}: {e})") from None


def _column(rows, name):
    return [r[name] for r in rows]


def load_mir(root, split: str = "test") -> MIRSplit:
    """Read the MIR CSVs and relevancy of ``split`` from ``root`` (the ``retrieval_annotations`` folder)."""
    vid_csv = os.path.join(root, f"EPIC_100_retrieval_{split}.csv")
    txt_csv = os.path.join(root, f"EPIC_100_retrieval_{split}_sentence.csv")
    rel_pkl = os.path.join(root, "relevancy", f"caption_relevancy_EPIC_100_retrieval_{split}.pkl")
    vids = read_csv_rows(vid_csv, ("narration_id",))
    txts = read_csv_rows(txt_csv, ("narration_id", "narration"))
    rel = read_pickle(rel_pkl)
    rel = np.asarray(getattr(rel, "values", rel), dtype=float)
    if rel.shape != (len(vids), len(txts)):
        raise AnnotationError(rel_pkl, None, f"relevancy is {rel.shape}, the CSVs give ({len(vids)}, {len(txts)})")
    if np.isnan(rel).any() or (rel < 0).any() or (rel > 1).any():
        raise AnnotationError(rel_pkl, None, "relevancy values must lie in [0, 1]")
    for path, ids in ((vid_csv, _column(vids, "narration_id")), (txt_csv, _column(txts, "narration_id"))):
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise AnnotationError(path, f"narration_id {short(dup)}", "duplicate id")
    return MIRSplit(_column(vids, "narration_id"), _column(txts, "narration_id"), _column(txts, "narration"), rel)


def load_mir_submission(path, split: MIRSplit) -> tuple[np.ndarray, int, int]:
    """Challenge submission (pickle, or ``.npz`` with the same keys) -> (similarity [V, T] in ``split`` order,
    missing rows, missing columns); missing videos/texts get -inf similarity (ranked last, i.e. misses)."""
    if str(path).endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as e:
            raise PredictionError(path, None, f"cannot read npz ({e})") from None
    else:
        data = read_pickle(path, PredictionError)
    if not isinstance(data, dict):
        raise PredictionError(path, None, "expected a dict with sim_mat, vis_ids, txt_ids")
    for key in ("sim_mat", "vis_ids", "txt_ids"):
        if key not in data:
            raise PredictionError(path, key, "missing key")
    sim = np.asarray(data["sim_mat"], dtype=float)
    vis = [str(x) for x in list(data["vis_ids"])]
    txt = [str(x) for x in list(data["txt_ids"])]
    if sim.shape != (len(vis), len(txt)):
        raise PredictionError(path, "sim_mat", f"shape {sim.shape} != (len(vis_ids), len(txt_ids)) = "
                              f"({len(vis)}, {len(txt)})")
    if np.isnan(sim).any():
        raise PredictionError(path, "sim_mat", "contains NaN")
    for key, ids, known in (("vis_ids", vis, split.video_ids), ("txt_ids", txt, split.text_ids)):
        unknown = sorted(set(ids) - set(known))
        if unknown:
            raise PredictionError(path, key, f"{len(unknown)} id(s) not in the split, e.g. {unknown[0]!r}")
    rows = {v: i for i, v in enumerate(vis)}
    cols = {t: j for j, t in enumerate(txt)}
    out = np.full((len(split.video_ids), len(split.text_ids)), -np.inf)
    ri = np.array([rows.get(v, -1) for v in split.video_ids])
    ci = np.array([cols.get(t, -1) for t in split.text_ids])
    have_r, have_c = ri >= 0, ci >= 0
    out[np.ix_(have_r, have_c)] = sim[np.ix_(ri[have_r], ci[have_c])]
    return out, int((~have_r).sum()), int((~have_c).sum())
