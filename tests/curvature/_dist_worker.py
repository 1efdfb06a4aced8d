"""Worker for the 2-process gloo test (imported by name in the spawned processes)."""

import torch
import torch.distributed as dist

from terrainlab.curvature import HessianOperator, eigs, trace


def model_and_data():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 5, generator=g), torch.randint(0, 3, (50,), generator=g)
    return net, x, y


def loss_fn(m, b):
    return torch.nn.functional.cross_entropy(m(b[0]), b[1])


def shards(x, y, rank):
    # unequal shards with unequal batches: rank 0 gets 20 samples in 2 batches, rank 1 gets 30
    if rank == 0:
        return [(x[:7], y[:7]), (x[7:20], y[7:20])]
    return [(x[20:], y[20:])]


def run(rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        net, x, y = model_and_data()
        H = HessianOperator(net, loss_fn, shards(x, y, rank), dtype=torch.float64,
                            process_group=dist.group.WORLD)
        # rank 1 uses a different seed: the operator broadcasts rank 0's random vectors
        r = eigs(H, k=3, which="LA", tol=1e-10, generator=torch.Generator().manual_seed(rank * 17))
        t = trace(H, "hutch++", n_matvec=30, generator=torch.Generator().manual_seed(rank * 17))
        torch.save({"eig": r.eigenvalues, "conv": r.converged, "n": H.n_samples,
                    "trace": t.estimate}, f"{out}/rank{rank}.pt")
        # both ranks reach the teardown together: a rank destroying the gloo group while its peer is still
        # in flight aborted one process ("terminate called without an active exception") on a loaded host
        dist.barrier()
    finally:
        dist.destroy_process_group()
