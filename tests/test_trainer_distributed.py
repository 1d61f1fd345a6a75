"""The Trainer under DDP (2 gloo processes on CPU) against the Trainer in one process, on the same images and masks.

For every method, two optimizer steps of 2 processes x B/2 images give the parameters of 1 process x B images
(the first step opens MI-MAE's eps_l gate, so the second includes L_max over the global batch of views); resume under
2 processes hands each rank its own generator state back and continues exactly; every collective runs on the
training device.
"""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from mimae import distributed
from mimae.checkpoint import CheckpointError
from mimae.engine import Trainer
from mimae.objectives import REGISTRY
from tests.conftest import join_process_group, rendezvous, tiny_config

GLOBAL_BATCH = 8
WORLD = 2
# (name, method, overrides): every method, MI-MAE with L_min on and CLUB negatives over the batch, and MI-MAE's
# variants that gather across processes differently: positives across 2 crops, an EMA target
VARIANTS = [(m, m, {}) for m in sorted(REGISTRY)] + [
    ("mimae-club-batch", "mimae", {"mimae.lambda_min": 1.0, "mimae.club_negatives": "batch"}),
    ("mimae-crops", "mimae", {"mimae.crops": 2, "mimae.views": "2"}),
    ("mimae-target", "mimae", {"mimae.positives": "target", "mimae.projector_dim": 8})]


def variant_config(method: str, overrides: dict, batch: int):
    """A tiny run whose gate opens after the first step (eps_l large) and whose lr makes a wrong gradient show."""
    values = {"method": method, "optim.batch_size": batch, "optim.warmup_epochs": 0.0, "optim.base_lr": 1.0,
              "data.train_limit": 64, "data.test_limit": 16, "mimae.eps_l": 100.0, "mrcl.proj_hidden": 32,
              "mrcl.proj_dim": 16, **overrides}
    return tiny_config(**{k.replace(".", "__"): v for k, v in values.items()})


def global_batches(trainer: Trainer, steps: int = 2) -> list[tuple[torch.Tensor, object]]:
    """``steps`` global batches of standardized images and masks, the same in every process."""
    gen = torch.Generator().manual_seed(123)
    crops = trainer.augment.crops
    shape = (GLOBAL_BATCH, 1, 16, 16) if crops == 1 else (GLOBAL_BATCH, crops, 1, 16, 16)
    return [(torch.randn(shape, generator=gen), trainer.objective.draw_masks(GLOBAL_BATCH, gen))
            for _ in range(steps)]


def two_steps(trainer: Trainer, part: slice) -> dict:
    """Two optimizer steps on ``part`` of the global batches: the gradients the optimizer received at each step,
    the parameters after both, and step 2's global L_max.

    The steps are plain SGD at the Trainer's scheduled lr. AdamW's first steps divide by |g| + eps, so gradients
    that are zero in exact arithmetic and rounding noise in practice (attention key biases, biases before a
    BatchNorm) become +-lr updates of either sign in either run; SGD keeps them at noise level, so every parameter
    can be compared. AdamW itself is elementwise on the same gradients."""
    trainer.optimizer = trainer.train_step.optimizer = torch.optim.SGD(trainer.objective.parameters(), lr=0.0)
    grads = []
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: grads.append(
        {n: p.grad.clone() for n, p in trainer.objective.named_parameters() if p.grad is not None}))
    terms = {}
    for images, masks in global_batches(trainer):
        per_image = masks.keep.shape[0] // GLOBAL_BATCH  # mimae.crops draws masks per crop: 2 rows an image
        rows = slice(None) if part.start is None else slice(part.start * per_image, part.stop * per_image)
        terms, _ = trainer.optimizer_step([(images[part], masks[rows])])
    return {"grads": grads, "params": {n: p.detach().clone() for n, p in trainer.objective.named_parameters()},
            "max_mi": terms["max_mi"].clone() if "max_mi" in terms else None}


def equality_worker(rank: int, port: int, out_dir: str) -> None:
    join_process_group(rank, WORLD, port)
    seen_devices = []
    for name, fn in (("all_reduce", torch.distributed.all_reduce), ("all_gather", torch.distributed.all_gather)):
        def checked(tensor, *args, _fn=fn, **kwargs):
            for t in tensor if isinstance(tensor, list) else [tensor]:
                seen_devices.append(t.device)
            return _fn(tensor, *args, **kwargs)
        setattr(torch.distributed, name, checked)
    part = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    results = {}
    for name, method, overrides in VARIANTS:
        trainer = Trainer(variant_config(method, overrides, GLOBAL_BATCH // WORLD), f"{out_dir}/{name}-{rank}")
        assert trainer.dist.world_size == WORLD
        results[name] = two_steps(trainer, part)
    results["devices"] = sorted({str(d) for d in seen_devices})
    torch.save(results, f"{out_dir}/rank{rank}.pt")
    distributed.cleanup()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    with rendezvous(WORLD) as port:
        mp.spawn(equality_worker, args=(port, str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.parametrize("name, method, overrides", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_two_processes_of_half_the_batch_equal_one_process(tmp_path, two_process_results, name, method,
                                                            overrides):
    single = two_steps(Trainer(variant_config(method, overrides, GLOBAL_BATCH), tmp_path), slice(None))
    for rank, results in enumerate(two_process_results):
        ddp = results[name]
        for step, (mine, reference) in enumerate(zip(ddp["grads"], single["grads"])):
            assert mine.keys() == reference.keys()
            scale = max(g.abs().max() for g in reference.values())
            # Step 1 starts from weights that a step at lr 1 moved by rounding-level differences: perturbing the
            # weights by 1e-7 (relative) alone changes mr-barlow's step-1 gradients by 2e-5 x scale on an AMD EPYC
            # (AVX512). A missing gather or a wrong scale is off by a sizeable fraction of scale.
            atol = (1e-5 if step == 0 else 1e-4) * scale
            for key, value in reference.items():
                torch.testing.assert_close(mine[key], value, atol=atol, rtol=1e-4,
                                           msg=lambda m, k=key, s=step, r=rank: f"grad {k} step {s} rank {r}: {m}")
        for key, value in single["params"].items():
            torch.testing.assert_close(ddp["params"][key], value, atol=1e-4, rtol=0,  # after step 1's update
                                       msg=lambda m, k=key, r=rank: f"{k} rank {r}: {m}")
        if single["max_mi"] is not None:  # L_max over the global batch of views, identical in every process
            torch.testing.assert_close(ddp["max_mi"], single["max_mi"], atol=1e-5, rtol=1e-5)


def test_every_collective_ran_on_the_training_device(two_process_results):
    for results in two_process_results:
        assert results["devices"] == ["cpu"]


def test_a_collective_refuses_a_tensor_on_another_device():
    distributed.setup("cpu")
    with pytest.raises(RuntimeError, match="on meta reached a collective of a run training on cpu"):
        distributed.check_device(torch.empty(2, device="meta"), "all_reduce_mean")


def resume_config():
    return tiny_config(data__train_limit=64, data__test_limit=16, eval__knn_bank_limit=16, optim__batch_size=8,
                       train__epochs=2)


def resume_worker(rank: int, port: int, out_dir: str) -> None:
    """An uninterrupted 2-process run, and one stopped at step 3 and resumed by a fresh pair of processes."""
    join_process_group(rank, WORLD, port)
    straight = Trainer(resume_config(), f"{out_dir}/straight")
    straight.run()
    first = Trainer(resume_config(), f"{out_dir}/stopped")
    first.run(until_step=3)
    stopped_state = first.generator.get_state()
    resumed = Trainer(resume_config(), f"{out_dir}/stopped", resume=True)
    restored_state = resumed.generator.get_state()
    resumed.run()
    torch.save({"stopped": stopped_state, "restored": restored_state, "step": resumed.step,
                "straight": straight.objective.state_dict(), "resumed": resumed.objective.state_dict()},
               f"{out_dir}/resume{rank}.pt")
    distributed.cleanup()


def test_resume_under_two_processes_restores_each_ranks_generator_and_continues_exactly(tmp_path):
    with rendezvous(WORLD) as port:
        mp.spawn(resume_worker, args=(port, str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"resume{r}.pt", weights_only=True) for r in range(WORLD)]
    for r in ranks:
        assert torch.equal(r["restored"], r["stopped"])
        assert r["step"] == 8
        for key, value in r["straight"].items():
            torch.testing.assert_close(r["resumed"][key], value, atol=1e-6, rtol=0, msg=key)
    assert not torch.equal(ranks[0]["stopped"], ranks[1]["stopped"])  # each rank draws its own crops and masks

    with pytest.raises(CheckpointError, match="written by a run of 2 process"):
        Trainer(resume_config(), tmp_path / "stopped", resume=True)
