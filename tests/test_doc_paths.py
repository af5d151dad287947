"""The reference docs name only files and modules that exist (review of issue 26/27, finding 7).

Checked: README.md, docs/*.md and the model cards (models/*.md); not docs/decisions/, whose dated records
tell what the tree was then. A name counts when it starts at a top-level folder of the repository:
``engine/codec/bright_pixels.py`` (a path, optionally followed by ``.attribute``) or
``engine.codec.bright_pixels`` (a module, optionally followed by one attribute defined in it).
Placeholders (``test_<family>``, ``sarcodec-$r``, ``rX``, ``YYYY``, ``....``, ``engine.x``) and globs
that match something are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/*.md", "models/*.md")
_TOP = r"(?:engine|training|benchmarks|scripts|tests|sar_toolbox_plugin|docs|models)"
PATH_NAME = re.compile(rf"(?<![\w./$-]){_TOP}/[\w./*$<>-]*[\w*>]")
MODULE_NAME = re.compile(r"(?<![\w./-])(?:engine|training|benchmarks|sar_toolbox_plugin)(?:\.[A-Za-z_]\w*)+")
PLACEHOLDER = re.compile(r"[<>$]|YYYY|\.\.\.\.|-r[XN]\b|-h\*|_$|\.x$")


def _defines(module: Path, name: str) -> bool:
    """Whether ``module`` (a .py file) defines or imports ``name`` (also inside a parenthesised import)."""
    text = module.read_text(encoding="utf-8")
    return re.search(rf"^\s*(?:def|class|async def)\s+{name}\b|^\s*{name}\s*[:=,]|\bimport\b.*\b{name}\b",
                     text, re.MULTILINE) is not None


def _path_exists(name: str) -> bool:
    """``name`` is a file/folder, a glob matching one, or ``file.attribute`` of an existing module."""
    if "*" in name:
        return any(REPO_ROOT.glob(name))
    if (REPO_ROOT / name).exists():
        return True
    head, _, attr = name.rpartition("/")[2].partition(".")
    module = REPO_ROOT / name.rpartition("/")[0] / f"{head}.py"
    return bool(attr) and module.is_file() and _defines(module, attr.split(".")[0])


def _module_exists(name: str) -> bool:
    """``name`` is a module or package, or one attribute of one."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        base = REPO_ROOT.joinpath(*parts[:k])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file() or base.is_dir():
            rest = parts[k:]
            return not rest or (len(rest) == 1 and module.is_file() and _defines(module, rest[0]))
    return False


def _stale_names() -> list[str]:
    stale = []
    for pattern in DOCS:
        for doc in sorted(REPO_ROOT.glob(pattern)):
            text = doc.read_text(encoding="utf-8")
            for m in PATH_NAME.finditer(text):
                name = m.group(0).rstrip(".")
                if not PLACEHOLDER.search(name) and not _path_exists(name):
                    stale.append(f"{doc.relative_to(REPO_ROOT)}: {name}")
            for m in MODULE_NAME.finditer(text):
                name = m.group(0).rstrip(".")
                if not PLACEHOLDER.search(name) and not _module_exists(name):
                    stale.append(f"{doc.relative_to(REPO_ROOT)}: {name}")
    return stale


def test_the_checker_finds_a_stale_name() -> None:
    assert not _path_exists("engine/codec/exceptions.py")
    assert not _module_exists("engine.codec.exceptions")
    assert _path_exists("engine/codec") and _module_exists("engine.codec")


def test_reference_docs_name_only_existing_files_and_modules() -> None:
    assert _stale_names() == []
