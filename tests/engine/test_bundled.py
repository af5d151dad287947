"""One home for the models folder and the runtime package list (engine.setup.bundled)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.setup import bundled

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_models_dir_is_the_repository_folder_unless_the_variable_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(bundled.MODELS_ENV, raising=False)
    assert bundled.models_dir() == REPO_ROOT / "models"
    monkeypatch.setenv(bundled.MODELS_ENV, str(tmp_path))
    assert bundled.models_dir() == tmp_path


def test_every_models_folder_lookup_honours_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The codec, co-registration and the environment report all look in the same folder."""
    import shutil

    from engine.codec.models import shipped_rates
    from engine.registration.shift.deep import find_embed_model
    from engine.setup import environment

    monkeypatch.setenv(bundled.MODELS_ENV, str(tmp_path))
    assert shipped_rates() == [] and find_embed_model() is None and environment.models_report() == []
    shutil.copy(REPO_ROOT / "models" / "regembed-guided-v3.onnx", tmp_path)
    assert find_embed_model() == tmp_path / "regembed-guided-v3.onnx"
    assert [m["file"] for m in environment.models_report()] == ["regembed-guided-v3.onnx"]


def test_runtime_list_is_requirements_runtime_txt_pinned() -> None:
    requirements = {r.distribution: r for r in bundled.runtime_requirements()}
    runtime_txt = bundled.parse_requirements((REPO_ROOT / "requirements" / "runtime.txt").read_text())
    assert runtime_txt and all(requirements[r.distribution] == r for r in runtime_txt)
    assert requirements["numpy"].spec == "numpy>=1.24,<2"
    assert requirements["scikit-image"].module == "skimage"
    assert requirements["onnxruntime"].spec.startswith("onnxruntime>=")  # from onnxruntime-cpu.txt


def test_every_runtime_package_imports_under_its_module_name() -> None:
    """The import names are right: each runtime package of the dev environment is found by its module."""
    for requirement in bundled.runtime_requirements():
        assert importlib.util.find_spec(requirement.module) is not None, requirement


def test_parse_requirements_skips_comments_and_blank_lines() -> None:
    parsed = bundled.parse_requirements("# a comment\n\nNumPy >= 1.24, <2  # why\nscikit-image\n")
    assert parsed == [
        bundled.Requirement("numpy", "numpy>=1.24,<2", "numpy"),
        bundled.Requirement("scikit-image", "scikit-image", "skimage"),
    ]


def test_missing_requirement_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"runtime\.txt.*Reinstall"):
        bundled.runtime_requirements(tmp_path)
    assert bundled.requirement_for("numpy") is not None
    assert bundled.requirement_for("skimage") == bundled.requirement_for("scikit-image")
    assert bundled.requirement_for("GDAL (osgeo)") is None
