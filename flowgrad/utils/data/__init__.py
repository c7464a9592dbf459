"""PyTorch's ``torch.utils.data`` on flowgrad: datasets, samplers (plus curriculum learning,
Bengio et al. 2009), collation and the DataLoader, with checkpointable random streams."""

from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .distributed import DistributedSampler
from .generator import Generator, default_generator, get_rng_state, set_rng_state
from .sampler import (
    BatchSampler,
    CurriculumSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
    linear_schedule,
)
from .worker import WorkerInfo, get_worker_info

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "CurriculumSampler", "DataLoader",
           "DistributedSampler",
           "Dataset", "Generator", "IterableDataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "WeightedRandomSampler", "default_collate", "default_convert", "default_generator",
           "get_rng_state", "get_worker_info", "linear_schedule", "random_split",
           "set_rng_state", "WorkerInfo"]
