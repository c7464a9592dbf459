"""Datasets: MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017) from checksummed IDX
files, the bundled digits and generated MNIST-1D (Greydanus 2020). The loading machinery
(``Dataset``, ``DataLoader``, samplers) is ``flowgrad.utils.data``, PyTorch's path."""

from .algorithmic import associative_recall, copy_pairs, copy_task, reversal_pairs
from .brown_tags import BrownTagged, UnknownTagError, brown_tagged, simplify_tag
from .family_trees import RELATIONS, Person, family_people, family_queries, family_triples
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
from .modular_tasks import adding_k, bouncing_balls, copying, seq_mnist, sort_of_clevr, triangles
from .sachs import SachsData, load_sachs
from .scan import SCAN, ScanBatch, ScanFormatError, encode_pairs, exact_match
from .scenes import Scenes, scene_label, scenes  # noqa: F401
from .sequence_tasks import adding, latching, latching_splits
from .small import Split, digits, mnist1d
from .text import (
    BrownCorpus,
    PennTreebank,
    TextCorpus,
    UnknownTokenError,
    Vocabulary,
    WikiText2,
    batchify,
    bptt_batches,
    get_batch,
    perplexity,
)

__all__ = ["CHECKSUMS", "MIRRORS", "MNIST", "ChecksumError", "CorruptFileError",
           "DatasetNotFoundError", "FashionMNIST", "Split", "cache_dir", "digits", "locate",
           "mnist1d", "read_idx", "search_path", "sha256", "verify", "write_idx"]
__all__ += ["BrownCorpus", "PennTreebank", "TextCorpus", "UnknownTokenError", "Vocabulary",
            "WikiText2", "batchify", "bptt_batches", "get_batch", "perplexity"]
__all__ += ["adding", "latching", "latching_splits"]
__all__ += ["associative_recall", "copy_pairs", "copy_task", "reversal_pairs"]
__all__ += ["SCAN", "ScanBatch", "ScanFormatError", "encode_pairs", "exact_match"]
__all__ += ["SachsData", "load_sachs"]
__all__ += ["RELATIONS", "Person", "family_people", "family_queries", "family_triples"]
__all__ += ["adding_k", "bouncing_balls", "copying", "seq_mnist", "sort_of_clevr", "triangles"]
__all__ += ["BrownTagged", "UnknownTagError", "brown_tagged", "simplify_tag"]
