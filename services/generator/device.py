"""Device choice: "auto" is CUDA when present, else CPU; and how many CPU threads one decode may use."""

from __future__ import annotations

import os

import torch


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu or cuda[:N]")
    return device


def cpu_threads_per_decode(torch_threads: int, handler_threads: int, cores: int | None = None) -> int:
    """Threads for torch's CPU kernels. 0 asks for the cores shared among the handler threads: each handler
    thread decodes one song at a time, so 4 handler threads with torch's default (every core each) would run
    4x as many busy threads as cores and lose time to switching."""
    if torch_threads > 0:
        return torch_threads
    return max(1, (cores or os.cpu_count() or 1) // max(1, handler_threads))
