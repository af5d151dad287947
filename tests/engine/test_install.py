"""The install commands name the interpreter that runs the toolbox, whatever ``python3`` is on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.setup import install
from engine.setup.bundled import parse_requirements, plugin_requirements_file, runtime_requirements

REPO_ROOT = Path(__file__).resolve().parents[2]


def _interpreter_seen_through(shim_dir: Path) -> tuple[str, str]:
    """(sys.executable, install.python_executable()) of the real interpreter started as ``python3``
    with ``shim_dir`` first on PATH, as QGIS starts its embedded Python (which looks its program
    name up on PATH)."""
    real = os.path.realpath(sys.executable)  # the base interpreter, not a venv's link to it
    code = ("import sys; from engine.setup.install import python_executable; "
            "print(sys.executable); print(python_executable())")
    env = {"PATH": f"{shim_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8"}
    done = subprocess.run(["python3", "-c", code], executable=real, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    executable, chosen = done.stdout.split()
    return executable, chosen


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell shim")
def test_a_python3_shim_first_on_path_is_not_named(tmp_path: Path) -> None:
    """Finding 24.11: a pyenv shim first on PATH was named while QGIS ran /usr/bin/python3."""
    shim = tmp_path / "python3"
    shim.write_text("#!/bin/sh\necho 'this shim is another Python' >&2\nexit 3\n")
    shim.chmod(0o755)
    executable, chosen = _interpreter_seen_through(tmp_path)
    assert executable == str(shim)  # the situation of the issue: sys.executable is the shim
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert chosen != str(shim) and Path(chosen).name == version
    assert os.path.realpath(chosen) == os.path.realpath(sys.executable)  # the interpreter that ran
    done = subprocess.run([chosen, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == sys.base_prefix


def test_a_virtual_environment_keeps_its_own_python() -> None:
    assert install.python_executable() == sys.executable
    assert install.install_command("rasterio").startswith(f"{sys.executable} -m pip install")


def test_the_plugin_requirements_file_installs_every_runtime_package() -> None:
    """Finding 24.12: one command names every runtime package (onnxruntime was in another file)."""
    path = plugin_requirements_file()
    includes = [line.split(None, 1)[1] for line in path.read_text().splitlines() if line.startswith("-r ")]
    specs = [r.spec for name in includes for r in parse_requirements((path.parent / name).read_text())]
    assert specs == [r.spec for r in runtime_requirements()]
    names = {r.distribution for r in runtime_requirements()}
    assert {"numpy", "rasterio", "onnxruntime", "scipy", "scikit-image", "constriction"} <= names
    command = install.install_requirements_command()
    assert command.startswith(f"{install.python_executable()} -m pip install")
    assert command.endswith(f" -r {path}")
