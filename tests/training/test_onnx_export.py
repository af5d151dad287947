"""training.onnx_export: the shared export call and the checked, atomic write."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.runtime import read_metadata
from training.onnx_export import ParityError, export_onnx, write_checked
from training.onnx_io import identity_metadata


def _export(tmp: Path) -> None:
    export_onnx(torch.nn.Identity(), (torch.zeros(1, 1, 16, 16),), tmp, ["input"], ["output"],
                {"input": {0: "N", 2: "H", 3: "W"}, "output": {0: "N", 2: "H", 3: "W"}})


def test_checked_write_attaches_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    diff = write_checked(path, _export, identity_metadata(), lambda tmp: 0.0)
    assert diff == 0.0
    assert read_metadata(path).model_id == identity_metadata().model_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_failed_parity_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    with pytest.raises(ParityError, match=r"parity of m\.onnx failed"):
        write_checked(path, _export, identity_metadata(), lambda tmp: 1.0)
    assert list(tmp_path.iterdir()) == []
