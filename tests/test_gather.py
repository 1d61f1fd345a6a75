"""gather_with_grad: a 2-process gloo run gives the gradients of one process on the same global batch.

The global-batch losses (U-MAE's uniformity, SimCLR's NT-Xent, Barlow Twins) see the gathered features in every
process; DDP averages the parameter gradients. The heads use LayerNorm here (mrcl.proj_norm=ln) because BatchNorm
normalizes over each process's own slice.
"""

import os

import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mimae import distributed
from mimae.objectives import build_objective
from tests.conftest import join_process_group, rendezvous, tiny_config

GLOBAL_BATCH = 8
METHODS = ("umae", "mr-simclr", "barlow")


def objective(method: str):
    torch.manual_seed(0)
    return build_objective(tiny_config(method=method, mrcl__proj_norm="ln", mrcl__proj_hidden=32,
                                       mrcl__proj_dim=16), 1)


def batch_and_masks(model):
    gen = torch.Generator().manual_seed(123)
    shape = (GLOBAL_BATCH, 1, 16, 16) if model.crops == 1 else (GLOBAL_BATCH, 2, 1, 16, 16)
    return torch.randn(shape, generator=gen), model.draw_masks(GLOBAL_BATCH, gen)


def gradients(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def shared_branch_gradients() -> tuple[torch.Tensor, torch.Tensor]:
    """x is gathered, w reaches the loss through another branch that receives the same incoming gradient tensor;
    returns (x.grad, w.grad). Without processes: x.grad = c, w.grad = c * exp(w) = c."""
    rank = distributed.dist.get_rank() if distributed.is_distributed() else 0
    world = distributed.dist.get_world_size() if distributed.is_distributed() else 1
    x = torch.ones(2, 3, requires_grad=True)
    w = torch.zeros(2 * world, 3, requires_grad=True)
    c = torch.arange(6.0 * world).reshape(2 * world, 3)
    ((w.exp() + distributed.gather_with_grad(x)) * c).sum().backward()
    return x.grad, w.grad, c, rank


def worker(rank: int, world: int, port: int, out_dir: str) -> None:
    join_process_group(rank, world, port)
    info = distributed.setup("cpu")
    part = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    results = {}
    for method in METHODS:
        model = objective(method)
        images, masks = batch_and_masks(model)
        ddp = DistributedDataParallel(model)  # kept referenced: its hooks reduce the gradients in backward
        ddp(images[part], masks[part])["loss"].backward()
        results[method] = gradients(model)
    x_grad, w_grad, c, _ = shared_branch_gradients()
    results["shared"] = {"x": x_grad, "w": w_grad, "c": c}
    torch.save(results, os.path.join(out_dir, f"rank{info.rank}.pt"))
    distributed.cleanup()


def test_gather_is_the_identity_without_a_process_group():
    x = torch.randn(3, 2)
    assert distributed.gather_with_grad(x) is x


def test_two_process_gradients_equal_single_process(tmp_path):
    single = {}
    for method in METHODS:
        model = objective(method)
        images, masks = batch_and_masks(model)
        model(images, masks)["loss"].backward()
        single[method] = gradients(model)

    with rendezvous(2) as port:
        mp.spawn(worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        ddp = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for method in METHODS:
            assert single[method].keys() == ddp[method].keys(), method
            for name in single[method]:
                torch.testing.assert_close(ddp[method][name], single[method][name], atol=2e-6, rtol=1e-4,
                                           msg=f"{method} {name} rank {rank}")
        # each process gets the summed gradient of its own slice; the other branch's gradient is untouched
        shared = ddp["shared"]
        torch.testing.assert_close(shared["x"], 2 * shared["c"][2 * rank:2 * rank + 2])
        torch.testing.assert_close(shared["w"], shared["c"])
