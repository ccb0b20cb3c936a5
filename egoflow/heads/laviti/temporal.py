"""LAVITI's temporal embeddings (TEs): a table over relative time [0, 1] of a chunk, read by interpolation.

Apart from the network because three readers share it: the model (token positions, frame TEs for the time
readout), the matcher/criterion (ground-truth start/end TEs) and the tests.
"""
from __future__ import annotations

import math

import torch


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """1D sine/cosine position embeddings ``[n, dim]`` (Transformer, Vaswani et al.) for positions 0..n-1."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def sample_te(table: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linearly interpolate the TE table ``[K, d]`` at relative times ``pos [...]`` in [0, 1] -> ``[..., d]``.

    This is the "interpolate to the token count" of the paper, done per position so that chunks of different
    lengths in one batch, ground-truth start/end times and every frame time all read the same table.
    """
    k = table.shape[0]
    x = pos.clamp(0.0, 1.0) * (k - 1)
    i0 = x.floor().long().clamp(max=k - 1)
    i1 = (i0 + 1).clamp(max=k - 1)
    w = (x - i0.to(x.dtype)).unsqueeze(-1).to(table.dtype)
    return table[i0] * (1 - w) + table[i1] * w
