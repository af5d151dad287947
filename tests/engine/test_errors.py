"""Errors every engine check shares: a choice among names, a missing or foreign input file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InputError, ModelError, SarToolboxError, check_choice
from engine.raster_io import inspect_raster
from engine.runtime import OnnxModel


def test_a_known_choice_is_returned_and_an_unknown_one_names_every_choice() -> None:
    assert check_choice("cubic", ("nearest", "bilinear", "cubic"), "resampling") == "cubic"
    assert check_choice("b", {"a": 1, "b": 2}, "key") == "b"
    with pytest.raises(InputError, match=r"^Unknown resampling 'lanczos'; use one of nearest, cubic\.$"):
        check_choice("lanczos", ("nearest", "cubic"), "resampling")
    with pytest.raises(InputError, match=r"^Unknown MODE 'x'; use one of global, local \(a hint\)\.$"):
        check_choice("x", ("global", "local"), "MODE", " (a hint)")


@pytest.mark.parametrize(
    ("reader", "suffix", "foreign_error", "foreign_message"),
    [
        (inspect_raster, ".tif", InputError, "not a raster"),
        (OnnxModel, ".onnx", ModelError, "not a valid ONNX model"),
    ],
    ids=["raster", "onnx-model"],
)
def test_a_missing_or_foreign_input_file_is_named(
    tmp_path: Path,
    reader: Callable[[Path], Any],
    suffix: str,
    foreign_error: type[SarToolboxError],
    foreign_message: str,
) -> None:
    with pytest.raises(InputError, match="does not exist"):
        reader(tmp_path / f"missing{suffix}")
    text = tmp_path / f"notes{suffix}"
    text.write_text("this is text, not data\n")
    with pytest.raises(foreign_error, match=foreign_message):
        reader(text)
