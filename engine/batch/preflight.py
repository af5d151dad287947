"""Before a batch is submitted: every Dask worker (and the scheduler) can run it, or it gets the engine.

A worker that cannot import the engine dies while unpickling its task and a scheduler that cannot
fails the whole graph, so the runner asks first (:func:`check_cluster`): each worker runs
:func:`engine.batch.remote.probe` (sent by value, so it runs without the engine), which reports
missing packages, an engine that does not import, missing models, unreadable inputs and an
unwritable output folder. With ``ship=True`` the engine, the models this run needs, the requirement
files and ``metadata.txt`` are uploaded to the scheduler and every worker (Dask's
``UploadDirectory``, workers restarted so they see it) and the probe runs again. Whatever is still
wrong stops the run with :class:`WorkerEnvironmentError`, saying what to install where.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SarToolboxError
from ..setup import bundled
from . import remote

logger = logging.getLogger(__name__)

WORKERS_TIMEOUT_S = 30
"""How long to wait for at least one worker to be connected to the scheduler."""

ENGINE_PACKAGE = __package__.rsplit(".", 1)[0]
"""The engine's import name here: ``engine`` in a checkout, ``sar_toolbox.engine`` when installed."""


class WorkerEnvironmentError(SarToolboxError, RuntimeError):
    """The Dask workers or scheduler cannot run the batch; the message says what to install where."""


@dataclass(frozen=True)
class Needs:
    """What a batch run needs on each worker (the scheduler needs only the engine package)."""

    modules: tuple[str, ...]
    models: tuple[str, ...]
    paths: tuple[str, ...]
    out_dir: str

    def probe_args(self, worker: bool = True) -> tuple[Any, ...]:
        """Arguments of :func:`remote.probe` for a worker, or for the scheduler (engine import only)."""
        if not worker:
            return ENGINE_PACKAGE, [], [], [], None
        return ENGINE_PACKAGE, list(self.modules), list(self.models), list(self.paths), self.out_dir


def models_needed(algorithm: str, inputs: Sequence[Path], options: Mapping[str, Any]) -> list[str]:
    """File names, in the models folder, of the models ``algorithm`` loads with these options."""
    if algorithm == "compress":
        from ..codec.models import bundled_codec
        from ..codec.target import rates_a_choice_may_run

        rates = rates_a_choice_may_run(options["rate"], options.get("quality"), options.get("target_bpp"),
                                       options.get("target_psnr"))
        return [p.name for rate in rates for p in bundled_codec(rate)]
    if algorithm == "decompress":
        from ..codec.fileformat import read_scene
        from ..errors import CompressedFileError

        ids: set[str] = set()
        for path in inputs:
            try:
                ids.update(band.header.model_id for band in read_scene(path).bands)  # every coded band
            except CompressedFileError:
                continue  # that scene fails on its own, with its reason
        return sorted(f"{i}-decoder.onnx" for i in ids)
    if algorithm == "translate" and not options.get("model"):
        from ..translation.render import default_model_path

        return [default_model_path().name]
    from ..registration.shift.methods import MODEL_METHODS

    if algorithm == "coregister" and options.get("method") in MODEL_METHODS:
        from ..registration.shift.deep import find_embed_model

        found = find_embed_model()
        return [found.name] if found else []
    return []


def needs_of(algorithm: str, inputs: Sequence[Path], out_dir: Path, options: Mapping[str, Any]) -> Needs:
    """The :class:`Needs` of one batch run."""
    paths = [str(Path(inputs[0]).resolve())] if inputs else []
    for key in ("reference", "model"):
        if options.get(key):
            paths.append(str(Path(options[key]).resolve()))
    modules = tuple(r.module for r in bundled.runtime_requirements())
    return Needs(modules, tuple(models_needed(algorithm, inputs, options)), tuple(paths),
                 str(out_dir.resolve()))


def _probe(client: Any, needs: Needs) -> dict[str, dict[str, Any]]:
    """Reports by worker address, and the scheduler's under ``"scheduler"``."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(remote)
    reports: dict[str, Any] = client.run(remote.probe, *needs.probe_args(), on_error="return")
    reports["scheduler"] = client.run_on_scheduler(remote.probe, *needs.probe_args(worker=False))
    return {where: r if isinstance(r, dict) else {"problems": [f"the probe failed: {r!r}"]}
            for where, r in reports.items()}


def _problems(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    return {where: list(r["problems"]) for where, r in reports.items() if r["problems"]}


def _missing_modules(reports: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {m for r in reports.values() for m in r.get("missing_modules", [])}


def stage_engine(models: Sequence[str], dest: Path) -> Path:
    """A folder that, put on ``sys.path``, makes this engine (and ``models``) importable: what is shipped."""
    engine = importlib.import_module(ENGINE_PACKAGE)
    engine_dir = Path(engine.__file__ or "").resolve().parent
    target = dest
    if "." in ENGINE_PACKAGE:  # installed: sar_toolbox/engine, with sar_toolbox/__init__.py
        target = dest / ENGINE_PACKAGE.split(".")[0]
        target.mkdir(parents=True)
        shutil.copy(engine_dir.parent / "__init__.py", target / "__init__.py")
    caches = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(engine_dir, target / engine_dir.name, ignore=caches)
    (target / "models").mkdir(parents=True)
    for name in models:
        shutil.copy(bundled.models_dir() / name, target / "models" / name)
    wanted = (*bundled.REQUIREMENT_FILES, bundled.PLUGIN_REQUIREMENTS)
    shutil.copytree(bundled.requirements_dir(), target / "requirements",
                    ignore=lambda _d, names: [n for n in names if n not in wanted])
    shutil.copy(bundled.ROOT / bundled.METADATA_NAME, target / bundled.METADATA_NAME)
    return dest


def ship_engine(client: Any, needs: Needs) -> None:
    """Upload the engine and the needed models to the scheduler and every worker; workers restart."""
    from dask.distributed import UploadDirectory

    with tempfile.TemporaryDirectory(prefix="sar-toolbox-ship-") as tmp:
        stage = stage_engine(needs.models, Path(tmp) / f"sar_toolbox_engine_{bundled.version()}")
        logger.info("Shipping the engine and %d model(s) to the Dask workers...", len(needs.models))
        workers = len(client.scheduler_info()["workers"])
        upload = UploadDirectory(str(stage), restart_workers=True, update_path=True, mode="all")
        client.register_plugin(upload)
    client.wait_for_workers(workers, timeout=WORKERS_TIMEOUT_S)


def check_cluster(client: Any, needs: Needs, ship: bool = False) -> None:
    """Return when every worker and the scheduler can run the batch; else :class:`WorkerEnvironmentError`."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise WorkerEnvironmentError(
            f"No Dask worker connected to the scheduler within {WORKERS_TIMEOUT_S} s; start workers "
            "(dask worker <scheduler address>) or omit --scheduler to run locally.") from None
    reports = _probe(client, needs)
    if _problems(reports) and ship:
        ship_engine(client, needs)
        reports = _probe(client, needs)
    if _problems(reports):
        raise WorkerEnvironmentError(_advice(_problems(reports), _missing_modules(reports), shipped=ship))


def _advice(problems: Mapping[str, Sequence[str]], missing: set[str], shipped: bool) -> str:
    lines = [f"  {where}: {'; '.join(found)}" for where, found in sorted(problems.items())]
    version = bundled.version()
    if "." in ENGINE_PACKAGE:
        steps = [f"install the same toolbox on every worker and on the scheduler, in the Python each runs: "
                 f"pip install 'sar-toolbox[batch]=={version}' (or the wheel `make wheel` builds)"]
    else:
        steps = ["this is a checkout's runner (python -m engine.batch): start the workers and the scheduler "
                 "with this checkout on PYTHONPATH, or install the toolbox there and here (pip install "
                 f"'sar-toolbox[batch]=={version}') and run sar-toolbox-batch"]
    if not shipped:
        steps.append("or rerun with --ship-engine to upload this engine and the models it needs to them")
    if missing:
        specs = " ".join(f"'{r.spec}'" for r in bundled.runtime_requirements() if r.module in missing)
        steps.append(f"the Python packages missing on the workers are installed by: pip install {specs}")
    return ("The Dask cluster cannot run this batch; nothing was submitted.\n" + "\n".join(lines)
            + "\nWhat to do: " + "; ".join(steps)
            + ". Inputs and the output folder must be at the same paths on every worker.")
