"""Run under mpirun -n 2: rank 1 raises while rank 0 waits in a collective; the job must end in
seconds with rank 1's message (tests/test_distributed.py measures it)."""

import flowgrad as fg
import flowgrad.distributed as dist

dist.init_process_group(backend="mpi")
dist.barrier()
if dist.get_rank() == 1:
    raise ValueError("planted failure on rank 1")
dist.all_reduce(fg.ones(3))  # rank 0 would wait here forever without the abort
print("rank 0 passed the collective", flush=True)
