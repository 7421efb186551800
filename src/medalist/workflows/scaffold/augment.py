"""Augmentation presets by image kind, as the albumentations steps `medalist new` writes.

The kind is read from the first training image: colour photos; small greyscale images
(digits, characters, documents: a flip changes what they show); larger greyscale scans
(X-ray, microscopy: any orientation is plausible, colour is not). Each preset is mild: on a
short baseline from scratch, strong augmentation costs more accuracy than it saves overfitting.
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
        "greyscale scans: any flip or quarter turn, brightness and contrast, no colour",
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


def image_kind(path: Path) -> tuple[str, str] | None:
    """("photo" | "document" | "medical", why) for the image at `path`; None if unreadable."""
    try:
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
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
