"""Run under mpirun -n 2 (tests/test_distributed.py): every collective against NumPy on known
inputs, in float64 and float32, and the errors for mismatched shapes."""

import numpy as np

import flowgrad as fg
import flowgrad.distributed as dist
from flowgrad.errors import ShapeError

dist.init_process_group(backend="mpi")
r, n = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and n == 2
base = np.arange(6.0).reshape(2, 3)


def mine(dtype, rank=r):
    return base * (rank + 1) + rank


everyone = {dt: [mine(dt, k) for k in range(n)] for dt in (np.float64, np.float32)}
for dt in (np.float64, np.float32):
    fdt = fg.float64 if dt is np.float64 else fg.float32
    stack = np.stack(everyone[dt])
    for op, ref in ((dist.ReduceOp.SUM, stack.sum(0)), (dist.ReduceOp.AVG, stack.mean(0)),
                    (dist.ReduceOp.MAX, stack.max(0)), (dist.ReduceOp.MIN, stack.min(0)),
                    (dist.ReduceOp.PRODUCT, stack.prod(0))):
        t = fg.tensor(mine(dt), dtype=fdt)
        assert dist.all_reduce(t, op=op) is None
        np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6, err_msg=str(op))
        t = fg.tensor(mine(dt), dtype=fdt)
        work = dist.all_reduce(t, op=op, async_op=True)
        work.wait()
        assert work.is_completed()
        np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)
    t = fg.tensor(mine(dt), dtype=fdt)
    dist.broadcast(t, src=1)
    np.testing.assert_array_equal(t.numpy(), everyone[dt][1].astype(dt))
    out = [fg.zeros(2, 3, dtype=fdt) for _ in range(n)]
    dist.all_gather(out, fg.tensor(mine(dt), dtype=fdt))
    for k in range(n):
        np.testing.assert_array_equal(out[k].numpy(), everyone[dt][k].astype(dt))
    big = fg.zeros(2 * n, 3, dtype=fdt)
    dist.all_gather_into_tensor(big, fg.tensor(mine(dt), dtype=fdt))
    np.testing.assert_array_equal(big.numpy(), np.concatenate(everyone[dt]).astype(dt))
    # reduce_scatter: rank k gets the sum over ranks of their k-th block
    blocks = [fg.tensor(mine(dt) + 10 * k, dtype=fdt) for k in range(n)]
    got = fg.zeros(2, 3, dtype=fdt)
    dist.reduce_scatter(got, blocks)
    ref = sum(everyone[dt][q] + 10 * r for q in range(n))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)
    got = fg.zeros(3, dtype=fdt)
    dist.reduce_scatter_tensor(got, fg.tensor(mine(dt).ravel(), dtype=fdt),
                               op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(got.numpy(), stack.mean(0).ravel()[3 * r:3 * r + 3], rtol=1e-6)
    t = fg.tensor(mine(dt), dtype=fdt)
    dist.reduce(t, dst=0)
    np.testing.assert_allclose(t.numpy(), stack.sum(0) if r == 0 else mine(dt), rtol=1e-6)
    gl = [fg.zeros(2, 3, dtype=fdt) for _ in range(n)] if r == 1 else None
    dist.gather(fg.tensor(mine(dt), dtype=fdt), gl, dst=1)
    if r == 1:
        for k in range(n):
            np.testing.assert_array_equal(gl[k].numpy(), everyone[dt][k].astype(dt))
    t = fg.zeros(2, 3, dtype=fdt)
    dist.scatter(t, [fg.full((2, 3), 7.0 + k, dtype=fdt) for k in range(n)] if r == 0 else None,
                 src=0)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 7.0 + r, dt))

# point to point
if r == 0:
    dist.send(fg.tensor([1.0, 2.0, 3.0]), dst=1, tag=3)
    w = dist.isend(fg.tensor([4.0]), dst=1)
    w.wait()
else:
    x = fg.zeros(3)
    assert dist.recv(x, src=0, tag=3) == 0
    np.testing.assert_array_equal(x.numpy(), [1, 2, 3])
    y = fg.zeros(1)
    dist.irecv(y, src=0).wait()
    assert y.item() == 4.0
# integer all_reduce keeps its dtype; AVG on integers is refused
t = fg.tensor([1, 2]) * (r + 1)
dist.all_reduce(t)
assert t.dtype == fg.int64 and t.tolist() == [3, 6]
try:
    dist.all_reduce(fg.tensor([1, 2]), op=dist.ReduceOp.AVG)
    raise AssertionError("AVG on int64 must raise")
except TypeError as e:
    assert "AVG" in str(e)
# a non-contiguous tensor is written back in place
t = fg.tensor(mine(np.float64)).t()
dist.all_reduce(t)
np.testing.assert_allclose(t.numpy(), np.stack(everyone[np.float64]).sum(0).T)
# mismatched shapes across ranks: an error on every rank naming both shapes
try:
    dist.all_reduce(fg.zeros(3 + r))
    raise AssertionError("mismatched shapes must raise")
except ShapeError as e:
    assert "rank 0 (3,)" in str(e) and "rank 1 (4,)" in str(e), str(e)
objs = [None] * n
dist.all_gather_object(objs, {"rank": r})
assert objs == [{"rank": 0}, {"rank": 1}]
lst = ["a", r] if r == 0 else [None, None]
dist.broadcast_object_list(lst, src=0)
assert lst == ["a", 0]
sub = dist.new_group([1])
if r == 1:
    assert dist.get_world_size(sub) == 1 and dist.get_rank(sub) == 0
else:
    assert sub is dist.GroupMember.NON_GROUP_MEMBER
dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"rank {r}: collectives OK", flush=True)
