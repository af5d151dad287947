"""Run one batch algorithm over many scenes on Dask: a LocalCluster or an existing scheduler.

The only module of the project that imports Dask. One task per scene
(:func:`engine.batch.jobs.run_scene`); every finished scene is recorded in
``summary.json`` in the output folder, rewritten atomically as results arrive, so an
interrupted batch leaves a truthful summary and a rerun skips what is complete.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DependencyError, InputError, RasterIOError
from ..raster_io import atomic_output
from ..runtime import THREADS_ENV
from .jobs import ALGORITHMS, Options, count_statuses, run_scene

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Cluster:
    """Where the tasks run: ``workers`` local processes, or the scheduler at ``address``."""

    workers: int = 2
    address: str | None = None


def worker_threads(workers: int, cores: int | None = None) -> int:
    """ONNX Runtime threads per local worker so that ``workers`` processes share the cores."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def worker_environment(workers: int) -> dict[str, str]:
    """Environment of each local worker process: ONNX Runtime, OpenMP and BLAS use its share of the cores."""
    threads = str(worker_threads(workers))
    return {THREADS_ENV: threads, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads}


def _dask() -> Any:
    try:
        import dask.distributed as distributed
    except ImportError as exc:
        raise DependencyError("dask[distributed]", "The batch runner",
                              "python -m pip install -r requirements/batch.txt") from exc
    return distributed


@contextmanager
def dask_client(cluster: Cluster) -> Iterator[Any]:
    """A connected Dask client; a LocalCluster is started (and stopped) when no address is given."""
    distributed = _dask()
    if cluster.address:
        try:
            client = distributed.Client(cluster.address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:
            raise RasterIOError(
                f"Could not reach the Dask scheduler at '{cluster.address}' within {CONNECT_TIMEOUT_S} s "
                f"({exc}); check the address (e.g. tcp://host:8786) or omit --scheduler to run locally."
            ) from None
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, env=worker_environment(cluster.workers)) as local, \
            distributed.Client(local) as client:
        yield client


def _write_summary(path: Path, header: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    counts = count_statuses(records)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps({**header, "counts": counts, "scenes": list(records)}, indent=2))


def run_batch(
    algorithm: str,
    inputs: Sequence[Path],
    out_dir: Path,
    options: Options,
    cluster: Cluster,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``algorithm`` on every input; returns the records in input order and writes summary.json."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"Unknown batch algorithm '{algorithm}'; choose one of {', '.join(ALGORITHMS)}.")
    header = {"algorithm": algorithm, "output_dir": str(out_dir), "options": dict(options),
              "scheduler": cluster.address or f"LocalCluster({cluster.workers} workers)"}
    summary = out_dir / SUMMARY_NAME
    start = time.perf_counter()
    records: dict[int, dict[str, Any]] = {}
    with dask_client(cluster) as client:
        distributed = _dask()
        futures = {client.submit(run_scene, algorithm, str(p), str(out_dir), dict(options),
                                 key=f"{algorithm}-{i}-{p.name}", pure=False, retries=0): i
                   for i, p in enumerate(inputs)}
        for future in distributed.as_completed(futures):
            i = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker itself died (e.g. out of memory)
                record = {"input": str(inputs[i]), "outputs": [], "status": "failed", "seconds": None,
                          "error": f"worker lost: {type(exc).__name__}: {exc}", "figures": {}}
            records[i] = record
            if on_done is not None:
                on_done(record)
            _write_summary(summary, {**header, "seconds": round(time.perf_counter() - start, 3)},
                           [records[k] for k in sorted(records)])
    return [records[k] for k in sorted(records)]
