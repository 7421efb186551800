"""Torch datasets, albumentations transforms from the config, and seeded sampling.

Every random draw is a function of (seed, fold, epoch): the sampler's permutation, and the
augmentation of each sample, seeded from (seed, fold, epoch, row). So a resumed run replays an
interrupted epoch exactly, and the augmentations don't depend on the number of DataLoader
workers or of DDP processes. The training sampler hands each worker (row, epoch) pairs, so
persistent workers, whose copy of the dataset never sees `set_epoch`, draw the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

from medalist.data.images import ImageSource  # noqa: E402
from medalist.errors import UserError, first_line  # noqa: E402


def mix_seed(*parts: int) -> int:
    """A 32-bit seed that is a fixed function of its integer parts."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def _norm_stats(values: Sequence[float], channels: int) -> list[float]:
    if len(values) == channels:
        return [float(v) for v in values]
    return [float(np.mean(values))] * channels


class InputNorm(torch.nn.Module):
    """uint8 batches to normalised floats, on the device where the batch already is.

    Workers hand over uint8 images (a quarter of float32's bytes between processes and to the
    GPU); normalising with `data.mean` / `data.std` happens here, after the transfer.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int) -> None:
        super().__init__()
        m = torch.tensor(_norm_stats(mean, channels)).view(1, channels, 1, 1) * 255.0
        s = torch.tensor(_norm_stats(std, channels)).view(1, channels, 1, 1) * 255.0
        self.register_buffer("mean", m, persistent=False)
        self.register_buffer("std", s, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std


def create_input_norm(data: Any, channels: int) -> InputNorm:
    """The InputNorm of a config's `data` section; with stacked frames (`frame_offsets`) the
    mean and std of one frame repeated for each."""
    frames = len(data.frame_offsets or [0])
    if frames > 1 and len(data.mean) != channels and channels % frames == 0:
        per = channels // frames
        return InputNorm(
            _norm_stats(data.mean, per) * frames, _norm_stats(data.std, per) * frames, channels
        )
    return InputNorm(data.mean, data.std, channels)


def create_transform(augment: list[dict[str, Any]], *, train: bool, seed: int = 0) -> A.Compose:
    """Albumentations steps named in the config (train only), then a uint8 CHW tensor."""
    steps: list[A.BasicTransform] = []
    if train:
        for i, spec in enumerate(augment):
            kwargs = {k: v for k, v in spec.items() if k != "name"}
            cls = getattr(A, spec["name"], None)
            if cls is None or not isinstance(cls, type):
                raise UserError(
                    f"data.augment[{i}].name = {spec['name']!r}: not an albumentations "
                    "transform (e.g. HorizontalFlip, Affine, RandomBrightnessContrast)"
                )
            try:
                steps.append(cls(**kwargs))
            except (TypeError, ValueError) as exc:
                msg = first_line(exc)
                raise UserError(f"data.augment[{i}] ({spec['name']}): {msg}") from None
    steps.append(ToTensorV2())
    return A.Compose(steps, seed=seed)


SampleFn = Callable[[A.Compose, np.ndarray, Any], tuple[torch.Tensor, torch.Tensor]]


def transform_image(
    transform: A.Compose, image: np.ndarray, target: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented image; its target (a label, labels, a value) as it is."""
    out = transform(image=image)["image"]
    return out, torch.tensor(0) if target is None else torch.as_tensor(target)


def transform_with_mask(
    transform: A.Compose, image: np.ndarray, target: np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented image and its mask, moved together: an (H, W) mask, or (C, H, W) with a
    mask per class."""
    if target is None:
        return transform_image(transform, image, None)
    if target.ndim == 2:
        out = transform(image=image, mask=target)
        return out["image"], torch.as_tensor(out["mask"])
    out = transform(image=image, mask=target.transpose(1, 2, 0))
    return out["image"], torch.as_tensor(out["mask"]).permute(2, 0, 1)


class ImageDataset(Dataset):
    """(image tensor, target) pairs for the given rows of an ImageSource; `sample` applies the
    transform to an image and its target (the task's `transform_sample`)."""

    def __init__(
        self,
        images: ImageSource,
        indices: np.ndarray,
        targets: np.ndarray | None,
        transform: A.Compose,
        *,
        seed: int = 0,
        fold: int = 0,
        sample: SampleFn = transform_image,
    ) -> None:
        self.images = images
        self.indices = np.asarray(indices)
        self.targets = targets
        self.transform = images.sample_transform(transform)  # stacked frames: one draw for all
        self.sample = sample
        self.seed = seed
        self.fold = fold
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, epoch = i if isinstance(i, tuple) else (i, self.epoch)
        row = int(self.indices[i])
        self.transform.set_random_seed(mix_seed(self.seed, self.fold, epoch, row, 7))
        target = None if self.targets is None else self.targets[row]
        return self.sample(self.transform, self.images[row], target)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: torch's stream in a worker is a function of (seed, fold, epoch)."""
    ds = get_worker_info().dataset
    if isinstance(ds, ImageDataset):
        torch.manual_seed(mix_seed(ds.seed, ds.fold, ds.epoch, worker_id + 1, 11))


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochShuffleSampler(Sampler[tuple[int, int]]):
    """A shuffled order drawn from (seed, fold, epoch); Lightning calls `set_epoch` each epoch.
    It yields (position, epoch) pairs: the epoch travels with each index to the workers.

    Under DDP each global batch of `batch_size` is split into equal slices, one per process,
    so W processes with batches of batch_size / W see exactly the batches one process sees.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, drop_last: bool) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def _order(self) -> np.ndarray:
        ds = self.dataset
        order = np.random.default_rng(mix_seed(ds.seed, ds.fold, self.epoch, 3)).permutation(
            len(ds)
        )
        if self.drop_last:
            order = order[: len(order) // self.batch_size * self.batch_size]
        rank, world = distributed_rank()
        if world == 1:
            return order
        per = self.batch_size // world
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return np.concatenate([b[rank * per : (rank + 1) * per] for b in batches])

    def __len__(self) -> int:
        return len(self._order())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(i, self.epoch) for i in self._order().tolist()])


class ShardSampler(Sampler[int]):
    """Rows in order; under DDP process r takes rows r, r+W, r+2W, ... (no row twice)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        rank, world = distributed_rank()
        return len(range(rank, self.n, world))

    def __iter__(self) -> Iterator[int]:
        rank, world = distributed_rank()
        return iter(range(rank, self.n, world))
