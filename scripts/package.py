"""Build the installable QGIS plugin zip.

Usage: ``python -m scripts.package --output dist/sar_toolbox_plugin.zip``

The zip holds one folder, ``sar_toolbox_plugin/``: the plugin code, the REAL
engine package copied in as ``sar_toolbox_plugin/engine`` (the symlink of the
source tree is resolved, so the plugin imports its own copy relatively and
cannot collide with another plugin's top-level ``engine``), the bundled models
(``*.onnx`` and their ``*.md`` cards) in ``sar_toolbox_plugin/models``, the
runtime requirement files in ``sar_toolbox_plugin/requirements`` (``plugin.txt``,
which includes the others, is what ``pip install -r`` needs; the environment report
quotes their pins), ``metadata.txt`` and ``LICENSE``. Caches and compiled files are left out.
"""

from __future__ import annotations

import argparse
import logging
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.setup.bundled import SHIPPED_REQUIREMENTS

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "sar_toolbox_plugin"
#: Entries of the plugin folder that are replaced by real copies (symlinks in the source tree).
VENDORED = ("engine", "models", "metadata.txt")
EXCLUDED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
MODEL_PATTERNS = ("*.onnx", "*.md")


def _files_under(folder: Path) -> Iterator[Path]:
    """Regular files below ``folder`` (following symlinks), caches excluded, sorted."""
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(root) / name
            if path.suffix not in EXCLUDED_SUFFIXES and path.is_file():
                yield path


def plugin_files(repo_root: Path = REPO_ROOT) -> list[tuple[Path, str]]:
    """Every ``(source file, name inside the zip)`` pair of the plugin package."""
    plugin_dir = repo_root / PLUGIN_NAME
    engine_dir = (repo_root / "engine").resolve()
    models_dir = (repo_root / "models").resolve()
    if not (plugin_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"{plugin_dir} is not the plugin package; run from the repository.")
    if not (engine_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"{engine_dir} is not the engine package; run from the repository.")
    metadata = repo_root / "metadata.txt"
    if not metadata.is_file():
        raise FileNotFoundError(f"{metadata} is missing: it is the plugin's metadata.")

    entries: list[tuple[Path, str]] = []
    for child in sorted(plugin_dir.iterdir()):
        if child.name in VENDORED or child.name in EXCLUDED_DIRS:
            continue
        if child.is_dir():
            entries += [
                (f, f"{PLUGIN_NAME}/{f.relative_to(plugin_dir).as_posix()}") for f in _files_under(child)
            ]
        elif child.is_file() and child.suffix not in EXCLUDED_SUFFIXES:
            entries.append((child, f"{PLUGIN_NAME}/{child.name}"))
    entries += [
        (f, f"{PLUGIN_NAME}/engine/{f.relative_to(engine_dir).as_posix()}") for f in _files_under(engine_dir)
    ]
    if models_dir.is_dir():
        for pattern in MODEL_PATTERNS:
            entries += [
                (f, f"{PLUGIN_NAME}/models/{f.name}") for f in sorted(models_dir.glob(pattern)) if f.is_file()
            ]
    requirements_dir = repo_root / "requirements"
    for pattern in SHIPPED_REQUIREMENTS:  # as the installed package (setup.py) ships them
        files = sorted(f for f in requirements_dir.glob(pattern) if f.is_file())
        entries += [(f, f"{PLUGIN_NAME}/requirements/{f.name}") for f in files]
    entries.append((metadata, f"{PLUGIN_NAME}/metadata.txt"))
    license_file = repo_root / "LICENSE"
    if license_file.is_file():
        entries.append((license_file, f"{PLUGIN_NAME}/LICENSE"))
    return entries


def build_zip(output: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Write the plugin zip atomically to ``output`` and return its path."""
    entries = plugin_files(repo_root)
    names = [name for _, name in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Two files map to the same zip entry: {duplicates}")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for source, name in entries:
                archive.write(source, name)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    LOG.info("Wrote %s (%d files, %.1f kB)", output, len(entries), output.stat().st_size / 1024)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=Path("dist") / f"{PLUGIN_NAME}.zip", help="zip to write"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_zip(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
