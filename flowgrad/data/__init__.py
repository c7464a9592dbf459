"""Datasets: MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017) from checksummed IDX
files, the bundled digits and generated MNIST-1D (Greydanus 2020); re-exports the DataLoader
surface of ``flowgrad.utils.data``."""

from ..utils.data import (
    BatchSampler,
    ConcatDataset,
    CurriculumSampler,
    DataLoader,
    Dataset,
    Generator,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)
from .files import (
    CHECKSUMS,
    MIRRORS,
    ChecksumError,
    DatasetNotFoundError,
    cache_dir,
    locate,
    search_path,
    sha256,
    verify,
)
from .idx import CorruptFileError, read_idx, write_idx
from .mnist import MNIST, FashionMNIST
from .small import Split, digits, mnist1d

__all__ = ["CHECKSUMS", "MIRRORS", "MNIST", "BatchSampler", "ChecksumError", "ConcatDataset",
           "CorruptFileError", "CurriculumSampler", "DataLoader", "Dataset",
           "DatasetNotFoundError", "FashionMNIST", "Generator", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Split", "Subset",
           "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "cache_dir",
           "default_collate", "digits", "locate", "mnist1d", "random_split", "read_idx",
           "search_path", "sha256", "verify", "write_idx"]
