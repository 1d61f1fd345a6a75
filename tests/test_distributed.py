"""A 2-process gloo run gives the same gradients as one process on the same global batch."""

import os
import socket

import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mimae import distributed
from mimae.objectives import build_objective
from tests.conftest import tiny_config

GLOBAL_BATCH = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_and_masks(objective):
    gen = torch.Generator().manual_seed(123)
    images = torch.randn(GLOBAL_BATCH, 1, 16, 16, generator=gen)
    return images, objective.draw_masks(GLOBAL_BATCH, gen)


def gradients(objective) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in objective.named_parameters() if p.grad is not None}


def worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = distributed.setup("cpu")  # the same call the trainer makes under torchrun
    torch.manual_seed(0)
    objective = build_objective(tiny_config(), 1)
    model = DistributedDataParallel(objective)
    images, masks = batch_and_masks(objective)
    part = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    model(images[part], masks[part])["loss"].backward()
    if info.is_main:
        torch.save(gradients(objective), os.path.join(out_dir, "ddp.pt"))
    distributed.cleanup()


def test_two_process_gradients_equal_single_process(tmp_path):
    torch.manual_seed(0)
    objective = build_objective(tiny_config(), 1)
    images, masks = batch_and_masks(objective)
    objective(images, masks)["loss"].backward()
    single = gradients(objective)

    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert single.keys() == ddp.keys()
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-6, rtol=1e-5, msg=name)
