"""Pieces shared by the planted-feature generators (nlq.py, mq.py): unit vectors and background videos."""
from __future__ import annotations

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def background_video(rng: np.random.Generator, num_clips: int, clip_sec: float, gap: float, fps: float,
                     scenes: np.ndarray, noise: float, noise_gain: float) -> tuple[float, np.ndarray, np.ndarray]:
    """A video of ``num_clips`` clips separated by ``gap`` seconds: (duration, times [T], feats [T, D]).

    The background is a slow random walk among scene prototypes ``scenes [S, D]`` plus noise, so it is
    structured but carries no answer; generators plant their signal on top.
    """
    duration = num_clips * (clip_sec + gap) + gap
    t = int(round(duration * fps))
    times = (np.arange(t) + 0.5) / fps
    dim = scenes.shape[1]
    mix = np.cumsum(rng.standard_normal((t, len(scenes))) * 0.3, axis=0)
    feats = 0.8 * unit(mix @ scenes) + noise * rng.standard_normal((t, dim)) / np.sqrt(dim) * noise_gain
    return duration, times, feats
