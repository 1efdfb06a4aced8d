import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

from terrainlab.curvature import HessianOperator, eigs, trace


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_equal_one_process_on_concatenated_data(tmp_path):
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import _dist_worker as w

    mp.spawn(w.run, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    net, x, y = w.model_and_data()
    H = HessianOperator(net, w.loss_fn, [(x, y)], dtype=torch.float64)
    ref = eigs(H, k=3, which="LA", tol=1e-10, generator=torch.Generator().manual_seed(0))
    tref = trace(H, "hutch++", n_matvec=30, generator=torch.Generator().manual_seed(0))
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["n"] == 50
        assert bool(got["conv"].all())
        torch.testing.assert_close(got["eig"], ref.eigenvalues, rtol=1e-12, atol=0)
        assert abs(got["trace"] - tref.estimate) <= 1e-10 * abs(tref.estimate)
