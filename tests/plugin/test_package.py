"""The plugin zip carries what ``engine.setup.bundled`` reads: the requirement files and the models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugins folder holding the extracted plugin zip."""
    from scripts import package

    folder = tmp_path_factory.mktemp("zip")
    with zipfile.ZipFile(package.build_zip(folder / "plugin.zip")) as zipped:
        zipped.extractall(folder / "plugins")
    return folder / "plugins"


def test_zip_finds_its_own_requirements_and_models(plugins: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from sar_toolbox_plugin.engine.setup import bundled
        print(json.dumps({"models": str(bundled.models_dir()),
                          "requirements": [r.spec for r in bundled.runtime_requirements()]}))
        """
    )
    env = {"PATH": "/usr/bin:/bin"}  # no SAR_TOOLBOX_MODELS_DIR
    done = subprocess.run([sys.executable, "-c", script, str(plugins)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["models"]) == plugins / "sar_toolbox_plugin" / "models"
    assert (Path(found["models"]) / "sarcodec-r1.md").is_file()
    from engine.setup.bundled import runtime_requirements

    assert found["requirements"] == [r.spec for r in runtime_requirements()]


def test_packager_needs_only_the_standard_library(tmp_path: Path) -> None:
    """``python -S`` sees no site-packages: the packager must build the zip from the standard library."""
    output = tmp_path / "plugin.zip"
    done = subprocess.run([sys.executable, "-S", "-m", "scripts.package", "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(output) as zipped:
        assert "sar_toolbox_plugin/engine/__init__.py" in zipped.namelist()


def test_make_package_does_not_set_up_the_dev_environment() -> None:
    """``make package`` runs the packager alone: no venv, no pip install of the training stack."""
    done = subprocess.run(["make", "-n", "package"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    commands = done.stdout
    assert "scripts.package" in commands
    assert "pip" not in commands and "venv" not in commands, commands


def test_zip_ships_one_requirements_file_that_pip_reads_whole(plugins: Path) -> None:
    """Finding 24.12: a zip user runs one command from the plugin folder, and it names every runtime
    package (pip itself resolves the nested files; --dry-run --no-index installs nothing)."""
    from engine.setup.bundled import runtime_requirements

    plugin = plugins / "sar_toolbox_plugin"
    assert (plugin / "requirements" / "plugin.txt").is_file()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps",
                           "-r", "requirements/plugin.txt"], cwd=plugin, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    satisfied = set(re.findall(r"^Requirement already satisfied: ([A-Za-z0-9_.-]+)", done.stdout, re.M))
    assert satisfied == {r.distribution for r in runtime_requirements()}, done.stdout
