"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017) from their IDX files, with
torchvision's interface: ``.data`` (uint8 N x 28 x 28), ``.targets`` (int64), ``ds[i]``."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from ..utils.data import Dataset, TensorDataset
from .files import locate
from .idx import CorruptFileError, read_idx

_IMAGES, _LABELS = 0x00000803, 0x00000801


class MNIST(Dataset):
    """MNIST handwritten digits, 60,000 train / 10,000 test 28x28 images (LeCun et al. 1998);
    ``ds[i]`` is (float32 image in [0, 1] of shape (1, 28, 28), int label)."""

    name = "mnist"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]
    mean_std = (0.1307, 0.3081)  # the usual normalisation constants of the training images

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None,
                 download: bool = True) -> None:
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if train else "t10k"
        files = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        self.root = locate(self.name, files, root=root, download=download)
        images = read_idx(self.root / files[0], magic=_IMAGES)
        labels = read_idx(self.root / files[1], magic=_LABELS)
        if images.shape[1:] != (28, 28):
            raise CorruptFileError(f"{self.root / files[0]}: images are {images.shape[1:]}, "
                                   f"expected 28 x 28")
        if len(images) != len(labels):
            raise CorruptFileError(f"{self.root}: {len(images)} images but {len(labels)} labels")
        if len(labels) and labels.max() >= len(self.classes):
            raise CorruptFileError(f"{self.root / files[1]}: label {labels.max()} is out of range "
                                   f"0..{len(self.classes) - 1}")
        self.data = Tensor._wrap(images, None, False)
        self.targets = Tensor._wrap(labels.astype(np.int64), None, False)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        img = self.data._data[index]
        target = int(self.targets._data[index])
        if self.transform is None:  # torchvision's ToTensor
            img = Tensor._wrap((img.astype(np.float32) / 255)[None], None, False)
        else:  # the uint8 (28, 28) array, where torchvision passes a PIL image
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def to_tensor_dataset(self, flatten: bool = False, normalize=None) -> TensorDataset:
        """All images as one float32 tensor in [0, 1] ((N, 1, 28, 28), or (N, 784) when
        ``flatten``) with the int64 targets; ``normalize`` is (mean, std) or True for
        ``mean_std``. Transforms are not applied. The DataLoader batches it without Python
        per sample."""
        x = self.data._data.astype(np.float32) / 255
        if normalize is not None and normalize is not False:
            mean, std = self.mean_std if normalize is True else normalize
            x -= np.float32(mean)
            x /= np.float32(std)
        n = len(x)
        x = x.reshape(n, 28 * 28) if flatten else x.reshape(n, 1, 28, 28)
        return TensorDataset(Tensor._wrap(x, None, False), self.targets)

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: {split}")


class FashionMNIST(MNIST):
    """Fashion-MNIST, Zalando article images in MNIST's format (Xiao et al. 2017)."""

    name = "fashion_mnist"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    mean_std = (0.2860, 0.3530)
