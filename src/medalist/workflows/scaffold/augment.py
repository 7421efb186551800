"""Augmentation presets by image kind, as the albumentations steps `medalist new` writes.

The kind is read from the first training image: colour photos; small greyscale images
(digits, characters, documents: a flip changes what they show); larger greyscale scans
(X-ray, microscopy: any orientation is plausible, colour is not). Each preset is mild: on a
short baseline from scratch, strong augmentation costs more accuracy than it saves overfitting.
Segmentation keeps only the steps that cost no Dice at the baseline's budget (`preset`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SMALL_GREY_SIDE = 64  # greyscale images up to this side are taken for digits or documents

PRESETS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "photo": (
        "photos: mirror, small shifts and zoom, light colour changes",
        [
            {"name": "HorizontalFlip", "p": 0.5},
            {
                "name": "Affine",
                "translate_percent": [-0.0625, 0.0625],
                "scale": [0.9, 1.1],
                "rotate": [-10, 10],
                "p": 0.5,
            },
            {
                "name": "RandomBrightnessContrast",
                "brightness_limit": 0.1,
                "contrast_limit": 0.1,
                "p": 0.3,
            },
        ],
    ),
    "document": (
        "digits/documents: no flips (a mirrored 2 is no 2), small shifts and turns",
        [
            {
                "name": "Affine",
                "translate_percent": [-0.0625, 0.0625],
                "scale": [0.95, 1.05],
                "rotate": [-8, 8],
                "p": 0.5,
            },
        ],
    ),
    "medical": (
        "greyscale scans: any flip or quarter turn, brightness and contrast, no colour; "
        "compare it with augment: [] first (on solar-cell scans no augmentation scored higher)",
        [
            {"name": "HorizontalFlip", "p": 0.5},
            {"name": "VerticalFlip", "p": 0.5},
            {"name": "RandomRotate90", "p": 0.5},
            {
                "name": "RandomBrightnessContrast",
                "brightness_limit": 0.1,
                "contrast_limit": 0.1,
                "p": 0.3,
            },
        ],
    ),
}


# A segmentation baseline (10 epochs from scratch) still underfits at its last epoch: shifts,
# zoom and turns cost it Dice (0.016 on items pasted on noise, 0.009 on crops of photos; a
# mirror alone costs none: bench/segment.py, bench/README.md). Scans keep their flips and turns.
SEGMENT_PRESETS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "photo": (
        "photos with masks: a mirror (shifts, zoom and turns cost Dice on a short baseline)",
        [{"name": "HorizontalFlip", "p": 0.5}],
    ),
    "document": (
        "digits/documents with masks: none (no flips; shifts and turns cost Dice on a short "
        "baseline)",
        [],
    ),
}


def preset(kind: str, task: str) -> tuple[str, list[dict[str, Any]]]:
    """(why, albumentations steps) of the preset for images of `kind` in a `task` run."""
    if task == "segment" and kind in SEGMENT_PRESETS:
        return SEGMENT_PRESETS[kind]
    return PRESETS[kind]


def image_kind(path: Path) -> tuple[str, str] | None:
    """("photo" | "document" | "medical", why) for the image at `path`; None if unreadable."""
    try:
        import numpy as np

        from medalist.data.images import open_image

        with open_image(path) as img:  # DICOM too, through pydicom
            w, h = img.size
            grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
            if not grey and img.mode in ("RGB", "RGBA"):
                small = np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.int16)
                grey = bool(np.abs(small - small[:, :, :1]).max() <= 2)
    except Exception:  # noqa: BLE001 - a format PIL lacks (DICOM): no preset, the default stays
        return None
    if not grey:
        return "photo", f"colour images ({w}x{h})"
    if min(w, h) <= SMALL_GREY_SIDE:
        return "document", f"small greyscale images ({w}x{h}): digits or documents"
    return "medical", f"greyscale images ({w}x{h}): scans"
