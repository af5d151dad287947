"""Functions the batch runner sends to Dask workers and the scheduler BY VALUE.

Standard library only and no engine imports at module level: :mod:`engine.batch.preflight`
registers this module with ``cloudpickle.register_pickle_by_value``, so these functions reach a
worker as code and run there even when the worker cannot import the engine - which is what
:func:`probe` finds out.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
from typing import Any


def probe(package: str, modules: list[str], models: list[str], paths: list[str],
          out_dir: str | None) -> dict[str, Any]:
    """What this process lacks to run batch scenes: a report with ``problems`` (empty: ready).

    ``package``: the engine's import name (``engine`` or ``sar_toolbox.engine``); ``modules``: import
    names of the runtime packages; ``models``: file names that must be in the engine's models folder;
    ``paths``: files that must be readable here (a scene, a reference); ``out_dir``: must be writable
    (None: not checked).
    """
    importlib.invalidate_caches()  # a folder uploaded since the last look is seen
    report: dict[str, Any] = {"host": socket.gethostname(), "python": sys.executable, "version": None,
                              "missing_modules": [], "missing_models": [], "models_dir": None, "problems": []}
    problems: list[str] = report["problems"]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    report["missing_modules"] = missing
    if missing:
        problems.append(f"missing Python packages: {', '.join(missing)}")
    try:
        engine = importlib.import_module(package)
        importlib.import_module(f"{package}.batch.jobs")
    except Exception as exc:  # ImportError, or an engine that fails while importing
        problems.append(f"cannot import the engine ('{package}'): {type(exc).__name__}: {exc}")
    else:
        report["version"] = engine.__version__
        folder = engine.setup.bundled.models_dir()
        report["models_dir"] = str(folder)
        report["missing_models"] = [m for m in models if not os.path.isfile(os.path.join(folder, m))]
        if report["missing_models"]:
            problems.append(f"models missing from '{folder}': {', '.join(report['missing_models'])}")
    unreadable = [p for p in paths if not os.access(p, os.R_OK)]
    if unreadable:
        problems.append(f"cannot read {', '.join(unreadable)} (the workers need the same file system paths)")
    if out_dir is not None and not (os.path.isdir(out_dir) and os.access(out_dir, os.W_OK | os.X_OK)):
        problems.append(f"cannot write to the output folder '{out_dir}' (the workers need the same file "
                        "system paths)")
    return report


def processing_keys(keys: list[str], dask_scheduler: Any = None) -> list[str]:
    """Those of ``keys`` that the scheduler has handed to a worker (state ``processing``).

    Run with ``client.run_on_scheduler``, which passes ``dask_scheduler``."""
    tasks = dask_scheduler.tasks
    return [k for k in keys if k in tasks and tasks[k].state == "processing"]
