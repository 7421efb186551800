"""Photos whose EXIF orientation says "turn me" (a phone held sideways) are read upright, as a
viewer shows them and as annotators drew their boxes and masks, in training, in prediction and
in the sizes the boxes are scaled by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medalist.data.images import image_size, read_image, upright

# EXIF orientation -> how the stored pixels are turned to be shown upright (numpy on H, W).
TURNS = {
    1: lambda a: a,
    3: lambda a: np.rot90(a, 2),
    6: lambda a: np.rot90(a, -1),  # 90 degrees clockwise
    8: lambda a: np.rot90(a, 1),
    2: lambda a: a[:, ::-1],
}


def _stored() -> np.ndarray:
    """A 20x40 (H x W) picture that no turn or mirror leaves unchanged."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255
    arr[:5, 30:] = (0, 200, 90)
    return arr


def _save(path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_stored()).save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", sorted(TURNS))
def test_a_png_is_read_turned_by_its_exif_orientation(tmp_path: Path, orientation: int) -> None:
    path = _save(tmp_path / "photo.png", orientation)
    expected = TURNS[orientation](_stored())
    got = read_image(path, 3)
    assert np.array_equal(got, expected)
    assert image_size(path) == (expected.shape[1], expected.shape[0])


def test_a_phone_jpeg_held_sideways_is_read_upright(tmp_path: Path) -> None:
    path = _save(tmp_path / "photo.jpg", 6)
    with Image.open(path) as img:
        stored = np.asarray(img.convert("RGB"))  # the same decoder, not turned
    assert stored.shape == (20, 40, 3)
    assert np.array_equal(read_image(path, 3), np.rot90(stored, -1))
    assert image_size(path) == (20, 40)  # width, height as shown


def test_an_image_without_exif_is_not_decoded_to_read_its_orientation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.png"
    Image.fromarray(_stored()).save(path)

    def decoded() -> None:
        raise AssertionError("decoded: a size read from the header would decode every image")

    with Image.open(path) as img:
        monkeypatch.setattr(img, "load", decoded)
        assert upright(img) is img
