"""What the toolbox runs on: package versions, execution providers, GPU, bundled models.

Used by ``sartoolbox:checkenvironment``. Never raises for a missing package:
the report says what is missing and the exact command that installs it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .install import install_command, python_executable

log = logging.getLogger(__name__)

ENGINE_DIR = Path(os.path.abspath(__file__)).parent  # not resolved: in the plugin zip it is a real folder
MODELS_DIR = ENGINE_DIR.parent / "models"
REQUIREMENTS_DIR = ENGINE_DIR.parent / "requirements"

# distribution name -> import name, for the packages the report covers
PACKAGES: dict[str, str] = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "rasterio": "rasterio",
    "affine": "affine",
    "scipy": "scipy",
    "constriction": "constriction",
    "scikit-image": "skimage",
}
ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def requirement_specs() -> dict[str, str]:
    """Pinned requirement per distribution, from ``requirements/*.txt`` when shipped, else bare names."""
    specs = {name: name for name in PACKAGES}
    for file in ("runtime.txt", "onnxruntime-cpu.txt"):
        path = REQUIREMENTS_DIR / file
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9_.\-]+)", line)
            if match and match.group(1).lower() in specs:
                specs[match.group(1).lower()] = line
    return specs


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, dict[str, Any]]:
    """``{name: {"version": str | None, "install": command | None}}`` for every runtime package."""
    specs = requirement_specs()
    report: dict[str, dict[str, Any]] = {}
    for dist in PACKAGES:
        if dist == "onnxruntime":
            found = [(d, _distribution_version(d)) for d in ONNXRUNTIME_DISTRIBUTIONS]
            installed = [(d, v) for d, v in found if v]
            version = installed[0][1] if installed else None
            entry: dict[str, Any] = {"version": version,
                                     "distribution": installed[0][0] if installed else None}
        else:
            version = _distribution_version(dist)
            entry = {"version": version}
        entry["install"] = None if version else install_command(specs[dist])
        report[dist] = entry
    return report


def gdal_versions() -> dict[str, str | None]:
    """GDAL used by rasterio (bundled in its wheel) and by the system's ``osgeo`` bindings."""
    out: dict[str, str | None] = {"rasterio": None, "osgeo": None}
    try:
        import rasterio

        out["rasterio"] = str(rasterio.__gdal_version__)
    except ImportError:
        pass
    try:
        from osgeo import gdal

        out["osgeo"] = str(gdal.__version__)
    except ImportError:
        pass
    return out


def gpu_info() -> list[dict[str, str]]:
    """NVIDIA GPUs reported by ``nvidia-smi`` (empty when there is none or no driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("nvidia-smi failed: %s", exc)
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and done.returncode == 0:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def providers_report(gpus: list[dict[str, str]]) -> dict[str, Any]:
    """Available and default-selected ONNX execution providers, with advice for the GPU."""
    try:
        from .runtime import available_providers, default_providers

        available, selected = available_providers(), default_providers()
    except ImportError:
        return {"available": [], "selected": [], "advice": "install onnxruntime to run models"}
    advice = ""
    if gpus and "CUDAExecutionProvider" not in available:
        advice = (
            f"An NVIDIA GPU ({gpus[0]['name']}) is present but onnxruntime has no CUDA provider; "
            "for GPU inference replace 'onnxruntime' with 'onnxruntime-gpu': "
            f"{python_executable()} -m pip uninstall -y onnxruntime && "
            f"{install_command('onnxruntime-gpu')} (or 'make setup GPU=1')."
        )
    return {"available": available, "selected": selected, "advice": advice}


def models_report(models_dir: Path = MODELS_DIR) -> list[dict[str, Any]]:
    """Bundled ``*.onnx`` models with their validated metadata (or the reason they are unusable)."""
    if not models_dir.is_dir():
        return []
    entries = []
    for path in sorted(models_dir.glob("*.onnx")):
        entry: dict[str, Any] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "model_card": path.with_suffix(".md").is_file(),
        }
        try:
            from .runtime import read_metadata

            entry["metadata"] = read_metadata(path).to_dict()
        except Exception as exc:  # report, never fail: the report is a diagnostic
            entry["error"] = str(exc)
        entries.append(entry)
    return entries


def environment_report(models_dir: Path | None = None) -> dict[str, Any]:
    """Everything ``sartoolbox:checkenvironment`` shows, as a JSON-serialisable dict."""
    packages = package_versions()
    gpus = gpu_info()
    report: dict[str, Any] = {
        "python": {"version": platform.python_version(), "executable": python_executable()},
        "platform": platform.platform(),
        "packages": packages,
        "gdal": gdal_versions(),
        "execution_providers": providers_report(gpus) if packages["onnxruntime"]["version"] else
        {"available": [], "selected": [], "advice": packages["onnxruntime"]["install"]},
        "gpu": gpus,
        "models_dir": str(models_dir or MODELS_DIR),
        "models": models_report(models_dir or MODELS_DIR),
    }
    report["missing"] = {name: p["install"] for name, p in packages.items() if p["install"]}
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """Human-readable lines of :func:`environment_report` (for logs and QGIS feedback)."""
    lines = [f"Python {report['python']['version']} ({report['python']['executable']})"]
    for name, info in report["packages"].items():
        lines.append(f"{name}: {info['version']}" if info["version"] else
                     f"{name}: MISSING - install with: {info['install']}")
    gdal = report["gdal"]
    lines.append(f"GDAL: rasterio {gdal['rasterio'] or '-'}, osgeo {gdal['osgeo'] or '-'}")
    eps = report["execution_providers"]
    lines.append(f"ONNX execution providers: available {', '.join(eps['available']) or '-'}; "
                 f"selected {', '.join(eps['selected']) or '-'}")
    if eps.get("advice"):
        lines.append(eps["advice"])
    lines.append("GPU: " + (", ".join(f"{g['name']} ({g['memory']}, driver {g['driver']})"
                                      for g in report["gpu"]) or "none found"))
    if not report["models"]:
        lines.append(f"Bundled models: none in {report['models_dir']}")
    for model in report["models"]:
        if "metadata" in model:
            meta = model["metadata"]
            card = "yes" if model["model_card"] else "MISSING"
            lines.append(f"Model {model['file']}: {meta['model_id']} ({meta['task']}), "
                         f"tile {meta['tile_size']}, overlap {meta['overlap']}, card {card}")
        else:
            lines.append(f"Model {model['file']}: UNUSABLE - {model['error']}")
    return lines
