"""The learner's small all-reduces (token counts, loss sums, micro-batch counts), with the tensor
on the device the process group's backend reduces on.

NCCL reduces CUDA tensors only (a CPU tensor raises at the first call), gloo reduces CPU tensors
(and CUDA ones); so the device is the engine's own device, never a default CPU tensor. Only torch
is imported: the GPU smoke script (`tests/gpu/smoke.py`) runs these on a bare torch install.
"""

from __future__ import annotations

import socket

import torch


def free_port(host: str = "") -> int:
    """A TCP port free on `host` right now, for a process group's rendezvous (MASTER_PORT); ""
    binds every interface (ranks on other nodes connect), "127.0.0.1" one machine only."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def collective_device(backend: str, engine_device: torch.device | str) -> torch.device:
    """Where the tensors of a collective on `backend` live: the engine's device, which for NCCL
    must be a CUDA device (anything else is an error naming both)."""
    device = torch.device(engine_device)
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(f"backend 'nccl' reduces CUDA tensors only, but the engine's device is {device}; "
                         "use backend 'gloo' on CPU")
    return device


def all_sum(dist, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks (float64: token counts stay exact up to 2**53)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_max(dist, value: int, device: torch.device) -> int:
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())
