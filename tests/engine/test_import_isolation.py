"""The engine imports without qgis and torch, and ``import engine`` stays cheap."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

BLOCKER = textwrap.dedent(
    """
    import sys

    class Block:
        blocked = ("qgis", "torch", "PyQt5")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def engine_modules() -> list[str]:
    import engine

    # a package's __main__ runs its command line when imported: its imports are those of its cli module
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")
                  if not m.name.endswith(".__main__"))


def test_every_engine_module_imports_without_qgis_and_torch() -> None:
    modules = engine_modules()
    assert "engine.pipeline" in modules and "engine.runtime" in modules
    done = run_python(
        f"""
        import importlib
        for name in {modules!r}:
            importlib.import_module(name)
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker does not work")
        assert not any(m.split(".")[0] in ("qgis", "torch") for m in sys.modules), "qgis/torch imported"
        print("ok", len({modules!r}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_import_engine_is_cheap() -> None:
    done = run_python(
        """
        import engine, engine.pipeline, engine.raster_io, engine.runtime, engine.radiometry.convert
        heavy = [m for m in ("onnxruntime", "rasterio", "scipy", "osgeo") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
