"""Move feature sets between the store and the formats other code reads: one ``.pt`` per video, one HDF5 file.

``.pt`` is the Ego4D / EgoVLP layout: ``<uid>.pt`` holds a bare float32 tensor ``[T, D]`` (Ego4D's SlowFast and
Omnivore video features: one step per 32-frame window every 16 frames of the 30 fps canonical video; EgoVLP's
NLQ features: one step per ~16 frames, 1.875 steps/s of clip time). A bare tensor carries no timestamps, so an
export also writes ``egoflow_export.json`` with every video's times, fps and the feature set's config; an import
uses it when present and otherwise rebuilds times by the rule in :func:`step_times`.

HDF5: one file, a group per video ``<uid>/feats [T, D]`` + ``<uid>/times [T]`` (chunked, uncompressed: zstd
saves ~6% on fp16 features), the feature set config in the file's attributes. An import also takes a bare
dataset per video (``<uid> -> [T, D]``, Ego-Exo4D's layout).

A bad file (not a tensor, wrong ndim, other dim than the set, NaN/inf, empty) is reported with its name and
recorded in the store as a failure; the import goes on with the others.
"""
from egoflow.features_store.interop_core import FEATURE_KEYS, SIDECAR, TIME_KEYS, ImportReport, InteropError, step_times
from egoflow.features_store.interop_hdf5 import export_hdf5, import_hdf5
from egoflow.features_store.interop_pt import export_pt, import_pt

__all__ = ["FEATURE_KEYS", "SIDECAR", "TIME_KEYS", "ImportReport", "InteropError", "export_hdf5", "export_pt",
           "import_hdf5", "import_pt", "step_times"]
