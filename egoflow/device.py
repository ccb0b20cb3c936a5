"""Where tensors go: one rule for extractors and heads alike ("auto" = CUDA when this machine has it)."""
from __future__ import annotations

import torch


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available else ``cpu``; an explicit ``cuda[:N]`` without CUDA is an error
    (silently falling back would make a GPU run a CPU run without anyone noticing)."""
    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available")
    return torch.device(spec)
