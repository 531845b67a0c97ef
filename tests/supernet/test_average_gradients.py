"""The data-parallel gradient all-reduce averages, on a real two-process gloo group on loopback.

AdamW ignores the scale of a gradient, so the two-worker training test alone cannot tell an
average from a sum; these values can: with rank r holding gradient r + 1, the average is 1.5
everywhere (a sum gives 3, no all-reduce leaves 1 and 2)."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, finite: list[bool], out: "mp.Queue") -> None:
    from supernet.train import _average_gradients

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        used, unused = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
        used.grad = torch.full((3,), float(rank + 1))  # `unused` has no gradient on this rank
        if rank == 1:
            unused.grad = torch.full((2,), 4.0)
        ok = _average_gradients([used, unused], finite[rank])
        out.put((rank, ok, used.grad.tolist(), None if unused.grad is None else unused.grad.tolist()))
    finally:
        dist.destroy_process_group()


def _run(finite: list[bool]) -> dict[int, tuple]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, port, finite, out)) for rank in (0, 1)]
    for p in procs:
        p.start()
    results = {}
    for _ in procs:
        rank, *rest = out.get(timeout=120)
        results[rank] = tuple(rest)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_gradients_are_averaged_and_a_missing_gradient_joins_as_zero():
    results = _run([True, True])
    for rank in (0, 1):
        ok, used, unused = results[rank]
        assert ok
        assert used == [1.5, 1.5, 1.5]  # (1 + 2) / 2: not the sum, not the rank's own
        assert unused == [2.0, 2.0]     # (0 + 4) / 2


def test_a_non_finite_loss_on_one_rank_skips_the_step_on_every_rank():
    results = _run([True, False])
    assert [results[r][0] for r in (0, 1)] == [False, False]
    assert results[0][1] == [1.0, 1.0, 1.0]  # nothing was reduced: the step is skipped
