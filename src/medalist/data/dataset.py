"""Torch datasets, albumentations transforms from the config, and seeded sampling.

Every random draw is a function of (seed, fold, epoch): the sampler's permutation, the
augmentation stream of each worker, so a resumed run replays an interrupted epoch exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

from medalist.data.images import ImageSource  # noqa: E402
from medalist.errors import UserError  # noqa: E402


def mix_seed(*parts: int) -> int:
    """A 32-bit seed that is a fixed function of its integer parts."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def _norm_stats(values: Sequence[float], channels: int) -> tuple[float, ...]:
    if len(values) == channels:
        return tuple(values)
    return tuple([float(np.mean(values))] * channels)


def create_transform(
    augment: list[dict[str, Any]],
    mean: Sequence[float],
    std: Sequence[float],
    channels: int,
    *,
    train: bool,
    seed: int = 0,
) -> A.Compose:
    """Albumentations steps named in the config (train only), then normalise and to tensor."""
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
                msg = str(exc).splitlines()[0]
                raise UserError(f"data.augment[{i}] ({spec['name']}): {msg}") from None
    steps.append(
        A.Normalize(
            mean=_norm_stats(mean, channels), std=_norm_stats(std, channels), max_pixel_value=255.0
        )
    )
    steps.append(ToTensorV2())
    return A.Compose(steps, seed=seed)


class ImageDataset(Dataset):
    """(image tensor, target) pairs for the given rows of an ImageSource."""

    def __init__(
        self,
        images: ImageSource,
        indices: np.ndarray,
        targets: np.ndarray | None,
        transform: A.Compose,
        *,
        seed: int = 0,
        fold: int = 0,
    ) -> None:
        self.images = images
        self.indices = np.asarray(indices)
        self.targets = targets
        self.transform = transform
        self.seed = seed
        self.fold = fold
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int, worker: int = 0) -> None:
        self.epoch = epoch
        self.transform.set_random_seed(mix_seed(self.seed, self.fold, epoch, worker, 7))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = int(self.indices[i])
        image = self.transform(image=self.images[row])["image"]
        if self.targets is None:
            return image, torch.tensor(0)
        return image, torch.as_tensor(self.targets[row])


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: each worker's augmentation stream is (seed, fold, epoch, worker)."""
    info = get_worker_info()
    ds = info.dataset
    if isinstance(ds, ImageDataset):
        ds.set_epoch(ds.epoch, worker=worker_id + 1)
        torch.manual_seed(mix_seed(ds.seed, ds.fold, ds.epoch, worker_id + 1, 11))


class EpochShuffleSampler(Sampler[int]):
    """A shuffled order drawn from (seed, fold, epoch); Lightning calls `set_epoch` each epoch."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        ds = self.dataset
        rng = np.random.default_rng(mix_seed(ds.seed, ds.fold, self.epoch, 3))
        return iter(rng.permutation(len(ds)).tolist())
