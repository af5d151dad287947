"""The paired SAR/optical data every trainer reads: where it lives, the 3MOS file pairs, their 8-bit
PNGs read as arrays and the held-out split by name."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

#: The real-data folder beside the repository (``../shared/data/real``).
DEFAULT_REAL_ROOT = str(Path(__file__).resolve().parents[3] / "shared" / "data" / "real")
#: The 3MOS optical/SAR pairs inside the real-data folder.
MOS_FOLDER = "opt_sar_3mos"


class Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=Named)


def mos_files(root: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """``(name, SAR PNG, optical PNG)`` of every ``<name>_sar.png`` / ``<name>_opt.png`` pair of
    ``<root>/opt_sar_3mos``, sorted by name; :class:`FileNotFoundError` when there is none."""
    folder = Path(root) / MOS_FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(
            f"'{folder}' does not exist; pass --real-root <folder holding {MOS_FOLDER}/> or --no-real."
        )
    files = []
    for sar_path in sorted(folder.glob("*_sar.png")):
        name = sar_path.name[: -len("_sar.png")]
        opt_path = folder / f"{name}_opt.png"
        if opt_path.is_file():
            files.append((name, sar_path, opt_path))
    if not files:
        raise FileNotFoundError(f"No *_sar.png / *_opt.png pairs in '{folder}'.")
    return files


def read_png(path: str | os.PathLike[str], mode: str) -> np.ndarray:
    """An 8-bit PNG as float32 digital numbers, converted to the PIL ``mode`` (``"L"`` grey: (H, W);
    ``"RGB"``: (H, W, 3)); the file is closed once read."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert(mode), dtype=np.float32)


def split_held_out(pairs: Iterable[NamedT], held_out: Collection[str]) -> tuple[list[NamedT], list[NamedT]]:
    """(training pairs, held-out pairs) by name."""
    pairs = list(pairs)
    return [p for p in pairs if p.name not in held_out], [p for p in pairs if p.name in held_out]
