"""What a stored video may claim about its length: never more than was decoded (see ``duration_attrs``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def why_no_samples(path: Path, fps: float) -> str:
    """A video shorter than half a sampling step has no sample time (k + 0.5) / fps inside it: say so."""
    from egoflow.extract.video import probe

    try:
        dur = float(probe(path).duration_s)
    except Exception:  # noqa: BLE001 - the generic reason is all we can give
        return "no frames could be decoded"
    if 0 < dur <= 0.5 / fps:
        return (f"video lasts {dur:.2f} s, under half a sampling step at {fps:g} fps ({0.5 / fps:.2f} s): no "
                f"sample time (k + 0.5) / fps falls inside it; use --fps {0.5 / dur * 1.01:.3g} or more")
    return "no frames could be decoded"


def duration_attrs(path: Path, frame_times: np.ndarray, fps: float) -> dict:
    """``{"duration_s": ...}`` for the attrs: the container's duration when the decoded samples cover it.

    A file whose metadata claims more than was decoded (a truncated container without a per-stream duration,
    or an audio track outlasting the video) must not claim that length: the decoded span is recorded instead,
    and the claim kept as ``declared_duration_s``. So ``num_steps`` always agrees with ``duration_s x fps``
    (``store verify`` checks it).
    """
    from egoflow.extract.video import num_samples, probe

    decoded = float(frame_times[-1] + 0.5 / fps)  # end of the last sampled interval (within one sample step)
    try:
        declared = float(probe(path).duration_s)
    except Exception:  # noqa: BLE001 - duration is informative; fall back to the sampled span
        return {"duration_s": decoded}
    if declared > 0 and abs(num_samples(declared, fps) - len(frame_times)) <= 1:
        return {"duration_s": declared}
    return {"duration_s": decoded, "declared_duration_s": declared}
