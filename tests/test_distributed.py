"""flowgrad.distributed, DistributedDataParallel and DistributedSampler. The collectives and DDP
run in real MPI processes (``mpirun -n 2`` on the scripts in tests/distributed/, with the
mpich wheel of the test extra); the rest is checked in this process, against PyTorch where it
has the same thing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.distributed as dist
from flowgrad.autograd import engine
from flowgrad.errors import GraphError
from flowgrad.utils.data import DistributedSampler

HERE = Path(__file__).parent / "distributed"
ROOT = Path(__file__).parent.parent


def _mpiexec() -> str:
    for name in ("mpiexec", "mpirun"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("mpiexec not found: the test extra installs the mpich wheel "
                '(pip install -e ".[test]")')


def mpirun(*args, timeout=180, n=2):
    pytest.importorskip("mpi4py", reason='pip install -e ".[test]" installs mpi4py')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([_mpiexec(), "-n", str(n), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    return proc, time.perf_counter() - start


def _ok(proc, marker):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for r in range(2):
        assert f"rank {r}: {marker}" in proc.stdout, proc.stdout[-3000:]


# --- in real MPI processes ------------------------------------------------------------------------

def test_collectives_against_numpy_on_two_ranks():
    proc, _ = mpirun(sys.executable, str(HERE / "check_collectives.py"))
    _ok(proc, "collectives OK")


def test_ddp_two_ranks_equal_one_process_on_the_global_batch():
    proc, _ = mpirun(sys.executable, str(HERE / "check_ddp.py"))
    _ok(proc, "DDP OK")


def test_fit_data_parallel_rank0_writes_and_every_rank_resumes(tmp_path):
    proc, _ = mpirun(sys.executable, str(HERE / "check_fit.py"), str(tmp_path))
    _ok(proc, "fit OK")
    assert proc.stderr.count("epoch 1/2") >= 1 and "rank 1" not in proc.stderr
    assert (tmp_path / "last.safetensors").exists() and (tmp_path / "curves.png").exists()


def test_a_raising_rank_ends_the_job_in_seconds_with_its_message():
    proc, seconds = mpirun(sys.executable, str(HERE / "check_fault.py"), timeout=120)
    assert proc.returncode != 0
    assert "rank 1 of 2 raised" in proc.stderr and "planted failure on rank 1" in proc.stderr
    assert "rank 0 passed the collective" not in proc.stdout
    assert seconds < 60, seconds


def test_cli_under_mpirun_trains_data_parallel_and_rank0_writes(tmp_path):
    out = tmp_path / "run"
    proc, _ = mpirun(sys.executable, "-m", "flowgrad", "--quick", "--out", str(out),
                     timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("digits_mlp: test_error") == 1  # rank 0 alone reports
    text = (out / "digits_mlp.md").read_text()
    assert "mpirun -n 2 flowgrad train digits_mlp --quick" in text
    assert "2 MPI ranks (data-parallel)" in text
    accuracy = float(proc.stdout.split("test_accuracy ")[1].split(",")[0])
    assert accuracy > 0.8, accuracy


# --- in this process --------------------------------------------------------------------------------

def test_uninitialised_group_raises_pytorchs_error():
    torch = pytest.importorskip("torch")
    import torch.distributed as tdist

    for ours, theirs in ((dist.get_rank, tdist.get_rank),
                         (dist.get_world_size, tdist.get_world_size),
                         (lambda: dist.all_reduce(fg.ones(2)),
                          lambda: tdist.all_reduce(torch.ones(2)))):
        with pytest.raises(ValueError) as a:
            ours()
        with pytest.raises(ValueError) as b:
            theirs()
        assert str(a.value) == str(b.value)
    assert not dist.is_initialized()


def test_other_backends_and_missing_mpi4py_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="backend 'nccl'.*MPI"):
        dist.init_process_group(backend="nccl")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"flowgrad\[distributed\]"):
        dist.init_process_group(backend="mpi")
    assert not dist.is_available()


@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 4, False),
                                                     (7, 2, False), (12, 4, True), (1, 3, False)])
def test_distributed_sampler_matches_pytorch_without_shuffle(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    del torch
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n, replicas", [(100, 2), (101, 2), (50, 3), (7, 8)])
def test_distributed_sampler_shards_are_disjoint_and_cover(n, replicas):
    for epoch in (0, 1):
        shards = []
        for rank in range(replicas):
            s = DistributedSampler(range(n), replicas, rank, seed=3)
            s.set_epoch(epoch)
            shards.append(list(s))
        flat = [i for sh in shards for i in sh]
        assert set(flat) == set(range(n))  # the epoch's union is the whole data set
        assert len({len(sh) for sh in shards}) == 1  # equal shard sizes (padding)
        if n % replicas == 0:
            assert len(flat) == len(set(flat)) == n  # disjoint
        else:
            assert len(flat) - len(set(flat)) == -n % replicas  # only the padding repeats
    a = DistributedSampler(range(100), 2, 0, seed=3)
    b = DistributedSampler(range(100), 2, 0, seed=3)
    b.set_epoch(1)
    assert list(a) != list(b)  # a new order each epoch


def test_distributed_sampler_bad_rank():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_post_accumulate_grad_hook_runs_once_per_backward_after_accumulation():
    torch = pytest.importorskip("torch")
    w = fg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    tw = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    seen, tseen = [], []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    tw.register_post_accumulate_grad_hook(lambda p: tseen.append(p.grad.numpy().copy()))
    for _ in range(2):  # used twice in the graph, two backward passes (accumulating)
        ((w * w).sum() + (w * 3).sum()).backward()
        ((tw * tw).sum() + (tw * 3).sum()).backward()
    assert len(seen) == len(tseen) == 2
    for a, b in zip(seen, tseen):
        np.testing.assert_allclose(a, b)
    with pytest.raises(GraphError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(GraphError, match="does not require grad"):
        fg.ones(2).register_post_accumulate_grad_hook(lambda p: None)


def test_queue_callback_runs_at_the_end_of_backward_only():
    order = []
    w = fg.ones(2, requires_grad=True)
    v = fg.ones(2, requires_grad=True)

    def hook(p):
        order.append("hook")
        engine.queue_callback(lambda: order.append(("end", v.grad is not None)))
    w.register_post_accumulate_grad_hook(hook)
    ((w * 2).sum() + (v * w).sum()).backward()
    assert order == ["hook", ("end", True)]
    with pytest.raises(RuntimeError, match="during the backward pass"):
        engine.queue_callback(lambda: None)
