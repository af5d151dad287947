"""Build the ``sar-toolbox`` distribution (``pip install .``, ``make wheel``).

The repository keeps its layout (``engine/``, ``training/``, ``models/`` at the top, the QGIS
plugin beside them); the distribution installs ONE top-level package, ``sar_toolbox``, laid out
like the plugin folder of the QGIS zip, so that no bare ``engine`` or ``training`` lands in
site-packages:

```
sar_toolbox/__init__.py          generated: docstring and __version__
sar_toolbox/engine/              engine/ (relative imports only, copied as is)
sar_toolbox/training/            training/, its absolute ``engine.``/``training.`` imports rewritten
sar_toolbox/models/              models/*.onnx and their cards (engine.setup.bundled.models_dir finds them)
sar_toolbox/requirements/        the runtime requirement files (engine.setup.bundled.runtime_requirements)
sar_toolbox/metadata.txt         the version's one source (engine.setup.bundled.version)
```

Static settings (dependencies from the requirement files, extras, entry points) are in
``pyproject.toml``; this file adds what needs code: the package map, the version read from
``metadata.txt`` and the build step that renames imports.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = "sar_toolbox"
#: Repository packages and their installed names (their absolute imports are rewritten accordingly).
RENAMED = {"engine": f"{PACKAGE}.engine", "training": f"{PACKAGE}.training"}


def _bundled() -> ModuleType:
    """``engine/setup/bundled.py`` (standard library only), loaded without importing the engine package."""
    name = "sar_toolbox_build_bundled"
    spec = importlib.util.spec_from_file_location(name, HERE / "engine" / "setup" / "bundled.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


#: Files copied next to the installed engine, as in the plugin zip: (repository glob, installed folder);
#: the requirement files are the zip's (``engine.setup.bundled.SHIPPED_REQUIREMENTS``).
DATA = (("models/*.onnx", "models"), ("models/*.md", "models"),
        *((f"requirements/{pattern}", "requirements") for pattern in _bundled().SHIPPED_REQUIREMENTS),
        ("metadata.txt", "."))
INIT = '''"""SAR Toolbox, installed: the engine (``sar_toolbox.engine``), the batch runner
(``sar-toolbox-batch``) and the training package (``sar_toolbox.training``, extra ``[train]``)."""

__version__ = "{version}"
'''


def plugin_version() -> str:
    """The ``version`` of ``metadata.txt`` (the QGIS plugin's metadata, the version's one source)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(HERE / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def rename_imports(source: str, renames: dict[str, str], where: str) -> str:
    """``source`` with every absolute import of a renamed package pointing at its installed name.

    ``from engine.x import y`` -> ``from sar_toolbox.engine.x import y``; ``import engine.x as z`` likewise.
    A bare ``import engine`` (which would bind another name) is refused.
    """
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] in renames]
            if any(a.asname is None and a.name.split(".")[0] in renames for a in node.names):
                raise ValueError(f"{where}:{node.lineno}: 'import {names[0]}' binds another name once "
                                 "installed; write 'from ... import ...'")
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in renames:
                row = node.lineno - 1
                pattern = re.compile(rf"\b{re.escape(name)}\b")
                lines[row] = pattern.sub(renames[top] + name[len(top):], lines[row], count=1)
    return "".join(lines)


class BuildPy(build_py):
    """``build_py`` plus renamed imports, the generated ``sar_toolbox/__init__.py`` and the data files."""

    def build_module(self, module: str, module_file: str, package: str | list[str]) -> object:
        result = super().build_module(module, module_file, package)
        target = Path(self.get_module_outfile(self.build_lib, self._parts(package), module))
        text = target.read_text(encoding="utf-8")
        renamed = rename_imports(text, RENAMED, module_file)
        if renamed != text:
            target.write_text(renamed, encoding="utf-8")
        return result

    @staticmethod
    def _parts(package: str | list[str]) -> list[str]:
        return package.split(".") if isinstance(package, str) else list(package)

    def run(self) -> None:
        super().run()
        root = Path(self.build_lib) / PACKAGE
        root.mkdir(parents=True, exist_ok=True)
        (root / "__init__.py").write_text(INIT.format(version=plugin_version()), encoding="utf-8")
        for pattern, folder in DATA:
            files = sorted(HERE.glob(pattern))
            if not files:
                raise FileNotFoundError(f"{HERE / pattern}: nothing to package; build from a full checkout.")
            (root / folder).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copyfile(file, root / folder / file.name)


def packages() -> tuple[list[str], dict[str, str]]:
    """Installed package names and the repository folder of each renamed top-level package."""
    names, dirs = [], {}
    for folder, installed in RENAMED.items():
        names += [installed] + [f"{installed}.{p}" for p in find_packages(str(HERE / folder))]
        dirs[installed] = folder
    return names, dirs


if __name__ == "__main__":
    _names, _dirs = packages()
    setup(version=plugin_version(), packages=_names, package_dir=_dirs, cmdclass={"build_py": BuildPy},
          package_data={"": ["*.json"]})  # the engine's tables: rate points, refusal calibration
