"""torchrun support: one process per device, DistributedDataParallel, rank 0 writes.

`torchrun --nproc_per_node=N pipeline/train.py` sets RANK/WORLD_SIZE/LOCAL_RANK;
a plain `python pipeline/train.py` leaves them unset and nothing here changes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def shard(batches: list, info: DistInfo) -> list:
    """This rank's share of the epoch's batches; every rank gets the same count, so none waits forever."""
    if not info.enabled:
        return batches
    usable = len(batches) - len(batches) % info.world_size
    return batches[info.rank : usable : info.world_size]


def all_reduce_sum(values: list[float], device: torch.device, info: DistInfo) -> list[float]:
    if not info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def weight_digest(model: torch.nn.Module) -> str:
    """A digest of every weight, bit for bit: ranks that all-reduced every gradient end with the same one."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def gather_digests(model: torch.nn.Module, info: DistInfo) -> list[str]:
    """Every rank's weight digest, in rank order (one entry without torchrun)."""
    mine = weight_digest(model)
    if not info.enabled:
        return [mine]
    everyone: list = [None] * info.world_size
    dist.all_gather_object(everyone, mine)
    return everyone


def all_reduce_max(value: float, device: torch.device, info: DistInfo) -> float:
    """The largest value over the ranks (elapsed time: every rank stops at the same evaluation)."""
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())
