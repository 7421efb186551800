"""16-bit greyscale images (X-ray and microscopy PNGs and TIFFs) are stretched to 8 bits from
their own range, not clipped at 255 (which turns a 12- or 16-bit scan white), wherever medalist
decodes them: training inputs, the image cache, near-duplicate search and thumbnails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medalist.data.images import build_cache, eight_bit, read_image


def _scan(path: Path, values: np.ndarray, mode: str = "I;16") -> Path:
    img = Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.float32))
    img.save(path)
    return path


def test_a_16_bit_png_is_stretched_from_its_own_range_for_one_and_three_channels(
    tmp_path: Path,
) -> None:
    values = np.array([[1000, 1500], [2000, 3000]])  # 12-bit values: all above 255
    path = _scan(tmp_path / "scan.png", values)
    with Image.open(path) as img:
        assert img.mode == "I;16"
    grey = read_image(path, 1)
    assert grey.shape == (2, 2, 1) and grey.dtype == np.uint8
    assert grey[:, :, 0].tolist() == [[0, 64], [128, 255]]  # (v - 1000) * 255 / 2000, rounded
    rgb = read_image(path, 3)
    assert rgb.shape == (2, 2, 3)
    assert all((rgb[:, :, c] == grey[:, :, 0]).all() for c in range(3))


def test_an_8_bit_image_decodes_exactly_as_before(tmp_path: Path) -> None:
    values = np.array([[3, 200], [17, 255]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png", 1)[:, :, 0].tolist() == values.tolist()
    with Image.open(tmp_path / "grey.png") as img:
        assert eight_bit(img) is img


def test_a_flat_or_float_scan_becomes_a_valid_8_bit_image(tmp_path: Path) -> None:
    flat = _scan(tmp_path / "flat.png", np.full((3, 3), 40000))
    assert read_image(flat, 1).max() == 0
    tif = _scan(tmp_path / "float.tif", np.array([[-1.0, 0.0], [1.0, np.nan]]), mode="F")
    with Image.open(tif) as img:
        assert img.mode == "F"
    assert read_image(tif, 1)[:, :, 0].tolist() == [[0, 128], [255, 128]]  # NaN read as 0


@pytest.mark.parametrize("channels", [1, 3])
def test_the_cache_of_16_bit_scans_keeps_what_tells_them_apart(tmp_path: Path, channels) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        values = rng.integers(0, 4000, (16, 16))
        if i % 2:
            values[4:12, 4:12] += 20000  # a bright lesion on every other scan
        paths.append(_scan(tmp_path / f"s{i}.png", values))
    cache = np.asarray(build_cache(paths, 16, channels, tmp_path / "cache"))
    assert cache.shape == (4, 16, 16, channels)
    centre, border = cache[:, 4:12, 4:12].mean(axis=(1, 2, 3)), cache[:, :2].mean(axis=(1, 2, 3))
    lesion = centre - border
    assert (lesion[1::2] > 150).all(), lesion  # the lesion stands out
    assert (np.abs(lesion[0::2]) < 40).all(), lesion  # and is absent where it is absent
    assert cache.max() == 255 and cache.min() == 0
