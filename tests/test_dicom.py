"""DICOM images (X-ray, CT and mammography competitions) are read with pydicom: the modality
and VOI LUTs applied, MONOCHROME1 inverted, stretched to 8 bits; `medalist new` reads their
size and kind, and a project of them trains and submits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import train_then_predict

from medalist.data.images import read_image
from medalist.errors import UserError
from medalist.workflows.scaffold import create_project

pydicom = pytest.importorskip("pydicom")


def write_dicom(path: Path, values: np.ndarray, **tags: object) -> Path:
    """An uncompressed 16-bit greyscale DICOM file of `values` (rows x columns)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = values.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


VALUES = np.array([[1000, 1500], [2000, 3000]])


def test_a_dicom_scan_is_stretched_from_its_own_range(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", VALUES)
    grey = read_image(path, 1)
    assert grey.dtype == np.uint8 and grey.shape == (2, 2, 1)
    assert grey[:, :, 0].tolist() == [[0, 64], [128, 255]]
    rgb = read_image(path, 3)
    assert all((rgb[:, :, c] == grey[:, :, 0]).all() for c in range(3))


def test_monochrome1_is_inverted_so_that_bright_stays_bright(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "m1.dcm", VALUES, PhotometricInterpretation="MONOCHROME1")
    assert read_image(path, 1)[:, :, 0].tolist() == [[255, 191], [128, 0]]


def test_the_files_window_is_applied_before_stretching(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "w.dcm", VALUES, WindowCenter=1500, WindowWidth=1000)
    out = read_image(path, 1)[:, :, 0]
    assert out[0, 0] == 0  # at the bottom of the window
    assert out[1, 0] == out[1, 1] == 255  # 2000 and 3000 both above it: one value
    assert 120 <= out[0, 1] <= 135  # the centre of the window, half-way


def test_a_broken_dicom_file_is_a_one_line_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a dicom file at all")
    with pytest.raises(UserError, match="unreadable DICOM file") as err:
        read_image(bad, 1)
    assert "\n" not in str(err.value)


def test_without_pydicom_the_error_says_how_to_read_dicom(tmp_path, monkeypatch) -> None:
    path = write_dicom(tmp_path / "a.dcm", VALUES)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now fails
    with pytest.raises(UserError, match="pip install pydicom") as err:
        read_image(path, 1)
    assert "convert the images to PNG" in str(err.value)


def test_a_dicom_competition_gets_a_project_that_trains_and_submits(tmp_path: Path) -> None:
    data = tmp_path / "comp"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(12)]
    for i, name in enumerate(ids):
        values = rng.integers(0, 1500, (40, 40))
        if i % 2:
            values[10:30, 10:30] += 2500  # an opacity on every other scan
        write_dicom(data / "train" / f"{name}.dcm", values)
    for name in ("t0", "t1"):
        write_dicom(data / "test" / f"{name}.dcm", rng.integers(0, 1500, (40, 40)))
    pd.DataFrame({"patientId": ids, "Target": [i % 2 for i in range(12)]}).to_csv(
        data / "train.csv", index=False
    )
    pd.DataFrame({"patientId": ["t0", "t1"], "Target": [0, 0]}).to_csv(
        data / "sample_submission.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.image_ext"] == ".dcm"
    assert report.inferred["data.image_size"] == "32"  # read from the DICOM file
    assert "greyscale" in report.reasons["data.augment"]

    sub = train_then_predict(tmp_path / "proj", "dicom")
    assert sub["patientId"].tolist() == ["t0", "t1"]
    assert set(sub["Target"]) <= {0, 1}
