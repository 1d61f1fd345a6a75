"""Process-group set-up and the few cross-process helpers the project needs.

One code path: a plain ``python``/``mimae`` run is a world of one process; ``torchrun`` sets RANK, WORLD_SIZE and
LOCAL_RANK and we join the group (NCCL on GPUs, gloo on CPUs).

Every collective of the project goes through the helpers below, and each checks that its tensor is on the training
device that :func:`setup` recorded: NCCL cannot reduce a CPU tensor, so a tensor left on the host would break a
multi-GPU run at its first collective; here it fails in the same way on any backend, with a message naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)


_TRAINING_DEVICE: torch.device | None = None


def restart_store(world_size: int) -> dist.Store | None:
    """Under torchrun's elastic agent: its key-value store, seen under a prefix of its own for each restart of the
    workers (``--max-restarts``); None otherwise (the default ``env://`` set-up).

    The agent keeps one store for all its restarts, and the process group publishes each process's address there
    under the same keys every time: without the prefix, a restarted process can read the address of a process that
    died in the last attempt and fail with "Connection refused" before the new one has written its own.
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False)
    return dist.PrefixStore(f"mimae/attempt_{attempt}", store)


def setup(device: str = "auto") -> DistInfo:
    """Join the process group if launched by torchrun (or already joined); otherwise a world of one. Records the
    training device that every collective's tensors must be on."""
    global _TRAINING_DEVICE
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        store = restart_store(world)
        if store is None:
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=store, rank=rank, world_size=world)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    _TRAINING_DEVICE = dev
    return DistInfo(rank, world, local_rank, dev)


def check_device(tensor: torch.Tensor, what: str) -> None:
    """Raise if ``tensor`` is not on the training device recorded by :func:`setup` (no check before it)."""
    if _TRAINING_DEVICE is None:
        return
    expected = _TRAINING_DEVICE
    if tensor.device.type != expected.type or (expected.index is not None and tensor.device.index != expected.index):
        raise RuntimeError(f"{what}: a tensor on {tensor.device} reached a collective of a run training on "
                           f"{expected} (NCCL reduces only tensors on the GPU)")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over processes (no gradient); the tensor itself with one process."""
    if not is_distributed():
        return value
    check_device(value, "all_reduce_mean")
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def any_true(flag: bool, device: torch.device) -> bool:
    """True in every process if ``flag`` is True in any (one small collective on the training device)."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=device)
    check_device(value, "any_true")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def all_gather(value: torch.Tensor) -> list[torch.Tensor]:
    """Every process's ``value`` (same shape everywhere), without gradient; ``[value]`` with one process."""
    if not is_distributed():
        return [value]
    check_device(value, "all_gather")
    parts = [torch.empty_like(value) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, value.contiguous())
    return parts


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each process the gradient of the global loss w.r.t. its own slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        check_device(x, "gather_with_grad")
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every process computed the same global loss; DDP averages parameter gradients over the world, so the sum
        # over processes of the gradient w.r.t. our slice is what this process must back-propagate. The incoming
        # gradient may be shared with other branches of the graph, so it is reduced in a copy, never in place.
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.size:(ctx.rank + 1) * ctx.size]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) from every process into (world*B, ...), differentiably; ``x`` alone if world = 1."""
    return _GatherWithGrad.apply(x) if is_distributed() else x


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
