"""What the toolbox runs on: package versions, execution providers, GPU, bundled models.

Used by ``sartoolbox:checkenvironment``: :func:`environment_report` gathers the
facts as a JSON-serialisable dict, :func:`report_lines` and :func:`report_html`
render them for people, :func:`write_report` saves them. Never raises for a
missing package: the report lists what is missing and gives one pinned
command that installs all of it.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .bundled import Requirement, requirement_for, runtime_requirements
from .bundled import models_dir as _bundled_models
from .install import install_command, install_requirements_command, python_executable

logger = logging.getLogger(__name__)

ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")
CODEC_PARTS = ("-encoder", "-decoder")
"""File-name endings of the two halves of a codec; both share the rate point's card."""
PROBLEM_WORDS = ("MISSING", "UNUSABLE", "PROBLEM", "Install everything")
"""Lines of :func:`report_lines` that the HTML page shows in bold."""


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(requirement: Requirement) -> tuple[str | None, str | None]:
    """(installed distribution, its version): either onnxruntime build counts for onnxruntime."""
    names = (ONNXRUNTIME_DISTRIBUTIONS if requirement.distribution == "onnxruntime"
             else (requirement.distribution,))
    for name in names:
        version = _distribution_version(name)
        if version:
            return name, version
    return None, None


def package_versions() -> dict[str, dict[str, Any]]:
    """``{distribution: {"version", "installed_as", "required"}}`` for every runtime package."""
    report: dict[str, dict[str, Any]] = {}
    for requirement in runtime_requirements():
        installed_as, version = _installed(requirement)
        report[requirement.distribution] = {"version": version, "installed_as": installed_as,
                                            "required": requirement.spec}
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
        logger.debug("nvidia-smi failed: %s", exc)
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
        from ..runtime import available_providers, default_providers

        available, selected = available_providers(), default_providers()
    except ImportError:
        return {"available": [], "selected": [], "advice": "install onnxruntime to run models"}
    advice = ""
    if gpus and "CUDAExecutionProvider" not in available:
        gpu_spec = requirement_for("onnxruntime")
        spec = gpu_spec.spec.replace("onnxruntime", "onnxruntime-gpu", 1) if gpu_spec else "onnxruntime-gpu"
        advice = (
            f"An NVIDIA GPU ({gpus[0]['name']}) is present but onnxruntime has no CUDA provider; "
            "for GPU inference replace 'onnxruntime' with 'onnxruntime-gpu': "
            f"{python_executable()} -m pip uninstall -y onnxruntime && "
            f"{install_command(spec)} (or 'make setup GPU=1')."
        )
    return {"available": available, "selected": selected, "advice": advice}


def model_card(model: Path, model_id: str | None) -> Path | None:
    """The model card of ``model``: ``<model id>.md``, else ``<file name>.md`` without -encoder/-decoder."""
    stem = model.stem
    for part in CODEC_PARTS:
        stem = stem.removesuffix(part)
    for name in dict.fromkeys(filter(None, (model_id, stem, model.stem))):
        card = model.with_name(f"{name}.md")
        if card.is_file():
            return card
    return None


def model_summary(path: Path) -> dict[str, Any]:
    """What a user needs to know of one bundled model (or why it is unusable: the model is loaded, on the
    CPU, so a graph that does not load or a missing onnxruntime shows): no entropy tables."""
    entry: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
    try:
        from ..runtime import OnnxModel

        meta = OnnxModel(path, providers=["CPUExecutionProvider"], intra_op_threads=1).metadata
    except Exception as exc:  # report, never fail: the report is a diagnostic
        entry["error"] = str(exc)
        entry["card"] = None
        return entry
    card = model_card(path, meta.model_id)
    entry.update(model_id=meta.model_id, task=meta.task.value, schema_version=meta.schema_version,
                 tile_size=meta.tile_size, overlap=meta.overlap, weights_sha256=meta.weights_sha256,
                 card=card.name if card else None)
    return entry


def models_report(folder: Path | None = None) -> list[dict[str, Any]]:
    """One :func:`model_summary` per ``*.onnx`` file of ``folder`` (default: the bundled models)."""
    folder = _bundled_models() if folder is None else folder
    return [model_summary(path) for path in sorted(folder.glob("*.onnx"))] if folder.is_dir() else []


def environment_report(models_dir: Path | None = None,
                       host: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything ``sartoolbox:checkenvironment`` shows, as a JSON-serialisable dict.

    ``host``: the application around the engine and its version (e.g. ``{"QGIS": "3.22.16"}``).
    """
    folder = _bundled_models() if models_dir is None else models_dir
    report: dict[str, Any] = {"host": dict(host or {}),
                              "python": {"version": platform.python_version(),
                                         "executable": python_executable()},
                              "platform": platform.platform()}
    try:
        packages = package_versions()
    except FileNotFoundError as exc:
        packages, report["problem"] = {}, str(exc)
    gpus = gpu_info()
    missing = [info["required"] for info in packages.values() if not info["version"]]
    report.update(
        packages=packages,
        missing=missing,
        install_command=install_command(*missing) if missing else None,
        requirements_command=install_requirements_command(),
        gdal=gdal_versions(),
        execution_providers=providers_report(gpus) if packages.get("onnxruntime", {}).get("version")
        else {"available": [], "selected": [], "advice": "install onnxruntime to run models"},
        gpu=gpus,
        models_dir=str(folder),
        models=models_report(folder),
    )
    return report


# ---------------------------------------------------------------- rendering
def _model_line(model: Mapping[str, Any]) -> str:
    card = model["card"] or "MISSING"
    return (f"Model {model['file']}: {model['model_id']} ({model['task']}), metadata schema "
            f"v{model['schema_version']}, sha256 {model['weights_sha256'][:12]}, card {card}")


def _model_lines(models: list[Mapping[str, Any]]) -> list[str]:
    """One line per model; models unusable for the same reason (onnxruntime missing) share one line."""
    lines: list[str] = []
    unusable: dict[str, list[str]] = {}
    for model in models:
        if "error" in model:
            unusable.setdefault(str(model["error"]), []).append(str(model["file"]))
        else:
            lines.append(_model_line(model))
    for error, files in unusable.items():
        named = f"Model {files[0]}" if len(files) == 1 else f"{len(files)} models ({', '.join(files)})"
        lines.append(f"{named}: UNUSABLE - {error}")
    return lines


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """The report as short human-readable lines (Processing log, text and HTML pages)."""
    lines = [f"{name} {version}" for name, version in report.get("host", {}).items()]
    lines.append(f"Python {report['python']['version']} ({report['python']['executable']})")
    if report.get("problem"):
        lines.append(f"PROBLEM: {report['problem']}")
    for name, info in report["packages"].items():
        shown = info["version"] if info["installed_as"] in (None, name) else \
            f"{info['version']} ({info['installed_as']})"
        lines.append(f"{name}: {shown}" if info["version"] else f"{name}: MISSING (needs {info['required']})")
    if report["install_command"]:
        lines.append(f"Install everything missing with: {report['install_command']}")
    if report.get("requirements_command"):
        lines.append(f"Install or update every package the plugin needs with: "
                     f"{report['requirements_command']}")
    gdal = report["gdal"]
    lines.append(f"GDAL: rasterio {gdal['rasterio'] or '-'}, osgeo {gdal['osgeo'] or '-'}")
    eps = report["execution_providers"]
    lines.append(f"ONNX execution providers: available {', '.join(eps['available']) or '-'}; "
                 f"selected {', '.join(eps['selected']) or '-'}")
    if eps.get("advice"):
        lines.append(eps["advice"])
    lines.append("GPU: " + (", ".join(f"{g['name']} ({g['memory']}, driver {g['driver']})"
                                      for g in report["gpu"]) or "none found"))
    lines.append(f"Models folder: {report['models_dir']}")
    if not report["models"]:
        lines.append("Bundled models: none")
    lines += _model_lines(report["models"])
    return lines


def report_html(report: Mapping[str, Any]) -> str:
    """A short self-contained HTML page of :func:`report_lines` (problems in bold)."""
    def item(line: str) -> str:
        text = html.escape(line)
        problem = any(word in line for word in PROBLEM_WORDS)
        return f"<li><b>{text}</b></li>" if problem else f"<li>{text}</li>"

    items = "\n".join(item(line) for line in report_lines(report))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>SAR Toolbox environment</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}li{margin:.2em 0}</style></head>\n"
        f"<body>\n<h1>SAR Toolbox environment</h1>\n<ul>\n{items}\n</ul>\n</body></html>\n"
    )


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    """Save the report atomically: HTML for ``.html``/``.htm``, plain text for ``.txt``, else JSON."""
    from ..raster_io import atomic_output

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in {".html", ".htm"}:
        text = report_html(report)
    elif suffix == ".txt":
        text = "\n".join(report_lines(report)) + "\n"
    else:
        text = json.dumps(report, indent=2, default=str) + "\n"
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
