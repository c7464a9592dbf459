"""Run under mpirun -n 2 (tests/test_distributed.py): DistributedDataParallel on 2 ranks with
a global batch B takes the same steps as one process on batch B; no_sync, buffers, unused
parameters, bucketing and the wrap-time checks."""

import numpy as np

import flowgrad as fg
import flowgrad.distributed as dist
from flowgrad import nn
from flowgrad.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group(backend="mpi")
r, n = dist.get_rank(), dist.get_world_size()
B = 16


def make(dtype, seed=0):
    fg.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 3)).to(dtype)


def data(step, dtype):
    rng = np.random.default_rng(100 + step)
    x = fg.tensor(rng.normal(size=(B, 5)), dtype=dtype)
    y = fg.tensor(rng.integers(0, 3, B))
    return x, y


def train(model, dtype, shard, steps=10, bucket_cap_mb=None):
    opt = fg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = data(step, dtype)
        if shard:
            x, y = x[r * B // n:(r + 1) * B // n], y[r * B // n:(r + 1) * B // n]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


for dtype, tol in ((fg.float64, 1e-12), (fg.float32, 2e-6)):
    reference = train(make(dtype), dtype, shard=False)
    for cap, view in ((None, False), (0.001, False), (None, True)):  # buckets; grads as views
        ddp = DDP(make(dtype, seed=r), bucket_cap_mb=cap,  # rank 1 starts elsewhere: broadcast
                  gradient_as_bucket_view=view)
        if cap is not None:
            assert len(ddp._buckets) > 2, len(ddp._buckets)
        train(ddp, dtype, shard=True)
        for (name, p), q in zip(ddp.module.named_parameters(), reference.parameters()):
            err = np.abs(p.detach().numpy() - q.detach().numpy()).max()
            assert err <= tol * max(1.0, np.abs(q.detach().numpy()).max()), (dtype, cap, name,
                                                                             err)
        p = next(ddp.parameters()).detach().clone()
        gathered = [fg.zeros_like(p) for _ in range(n)]
        dist.all_gather(gathered, p)
        assert np.array_equal(gathered[0].numpy(), gathered[1].numpy())  # replicas identical

# no_sync: gradients of two half-batches accumulated locally, averaged once at the end
ref = make(fg.float64)
x, y = data(0, fg.float64)
nn.functional.cross_entropy(ref(x[:8]), y[:8]).backward()
nn.functional.cross_entropy(ref(x[8:]), y[8:]).backward()
ddp = DDP(make(fg.float64))
half = slice(r * 8, r * 8 + 4), slice(r * 8 + 4, r * 8 + 8)
with ddp.no_sync():
    nn.functional.cross_entropy(ddp(x[half[0]]), y[half[0]]).backward()
local = [p.grad.numpy().copy() for p in ddp.parameters()]
nn.functional.cross_entropy(ddp(x[half[1]]), y[half[1]]).backward()
for p, q, before in zip(ddp.parameters(), ref.parameters(), local):
    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert not np.allclose(before, p.grad.numpy())  # the last backward did communicate
# rank k accumulates 2 g_k (two quarter-batch means of its half); the average over the ranks,
# (2 g_0 + 2 g_1) / 2, is the reference's g_0 + g_1

# buffers: rank 0's BatchNorm running statistics are broadcast before each forward
fg.manual_seed(r)
bn = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
bn[1].running_mean.fill_(float(r + 1))
ddp = DDP(bn)
assert np.all(bn[1].running_mean.numpy() == 1.0)  # broadcast at wrap
bn[1].running_mean.fill_(float(r + 5))
ddp.eval()
with fg.no_grad():
    ddp(fg.randn(3, 4))
assert np.all(bn[1].running_mean.numpy() == 5.0)  # rank 0's, before the forward
ddp.train()


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.unused = nn.Linear(4, 2)

    def forward(self, x):
        return self.body(x)


# an unused parameter without find_unused_parameters: PyTorch's error at the next forward
ddp = DDP(TwoHeads())
ddp(fg.randn(2, 4)).sum().backward()
try:
    ddp(fg.randn(2, 4))
    raise AssertionError("the unused parameter must be reported")
except RuntimeError as e:
    assert "unused.weight" in str(e) and "find_unused_parameters" in str(e), str(e)
# with find_unused_parameters=True: backward completes; the unused layer keeps grad None
fg.manual_seed(0)
ddp = DDP(TwoHeads(), find_unused_parameters=True)
for _ in range(2):
    ddp(fg.randn(2, 4)).sum().backward()
assert ddp.module.unused.weight.grad is None and ddp.module.body.weight.grad is not None

# a model that differs between ranks is refused at wrap time, on every rank
try:
    DDP(nn.Linear(3 + r, 2))
    raise AssertionError("different models must be refused")
except Exception as e:
    assert "rank 1" in str(e) and "rank 0" in str(e), str(e)
assert list(DDP(nn.Linear(2, 2)).state_dict()) == ["module.weight", "module.bias"]
dist.destroy_process_group()
print(f"rank {r}: DDP OK", flush=True)
