"""Run under mpirun -n 2 with a directory argument: flowgrad.train.fit data-parallel
(DistributedDataParallel + DistributedSampler): every rank sees the same averaged metrics, only
rank 0 writes the checkpoints and curves, and every rank resumes from that one checkpoint."""

import os
import sys

import numpy as np

import flowgrad as fg
import flowgrad.distributed as dist
from flowgrad import nn
from flowgrad.nn.parallel import DistributedDataParallel as DDP
from flowgrad.train import fit
from flowgrad.utils.data import DataLoader, DistributedSampler, TensorDataset

directory = sys.argv[1]
dist.init_process_group(backend="mpi")
r = dist.get_rank()
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 6)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
train = TensorDataset(fg.from_numpy(x[:64]), fg.from_numpy(y[:64]))
valid = TensorDataset(fg.from_numpy(x[64:]), fg.from_numpy(y[64:]))


def run(epochs, resume):
    fg.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2)))
    opt = fg.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    sampler = DistributedSampler(train, seed=1)
    loader = DataLoader(train, batch_size=8, sampler=sampler)
    vloader = DataLoader(valid, batch_size=8, sampler=DistributedSampler(valid, shuffle=False))
    history = fit(model, loader, nn.functional.cross_entropy, opt, epochs, valid_loader=vloader,
                  checkpoint_dir=directory, resume=resume, progress=True)
    return model, history


model, history = run(2, resume=False)
logs = [history.epochs[-1]["train_loss"], history.epochs[-1]["valid_accuracy"]]
everyone = [None, None]
dist.all_gather_object(everyone, logs)
assert everyone[0] == everyone[1], everyone  # one set of numbers: the mean over all examples
dist.barrier()
assert os.path.exists(os.path.join(directory, "last.safetensors"))
assert os.path.exists(os.path.join(directory, "history.csv"))
model2, history2 = run(4, resume=True)
assert [e["epoch"] for e in history2.epochs] == [1, 2, 3, 4], history2.epochs
assert history2.epochs[1]["train_loss"] == logs[0]
params = [p.detach().numpy() for p in model2.parameters()]
others = [None, None]
dist.all_gather_object(others, params)
assert all(np.array_equal(a, b) for a, b in zip(*others))
assert history2.epochs[-1]["valid_accuracy"] >= 0.8, history2.epochs[-1]
dist.destroy_process_group()
print(f"rank {r}: fit OK", flush=True)
