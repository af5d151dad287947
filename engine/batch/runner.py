"""Run one batch algorithm over many scenes on Dask: a LocalCluster or an existing scheduler.

The only module of the project that imports Dask. One task per scene
(:func:`engine.batch.jobs.run_scene`); every finished scene is recorded in
``summary.json`` in the output folder, rewritten atomically as results arrive, so an
interrupted batch leaves a truthful summary and a rerun skips what is complete (keeping the
figures the earlier run recorded). Before submitting, :func:`engine.batch.preflight.check_cluster`
makes sure every worker can run the scenes; a scene whose worker dies, or that runs past the
per-scene timeout, is recorded as failed with the cause.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DependencyError, RasterIOError, check_choice
from ..raster_io import atomic_output
from ..runtime import THREADS_ENV
from ..setup.bundled import version
from .jobs import ALGORITHMS, Options, count_statuses, run_scene
from .preflight import WorkerEnvironmentError, check_cluster, needs_of
from .remote import processing_keys

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
CONNECT_TIMEOUT_S = 10
SCENE_TIMEOUT_S = 6 * 3600.0
"""Default per-scene limit, counted from when a worker takes the scene (generous: a product-size scene
takes minutes)."""
NO_WORKER_TIMEOUT_S = 60
"""A batch with scenes left and no worker for this long fails those scenes instead of waiting."""
POLL_S = 1.0

__all__ = ["SUMMARY_NAME", "BatchInterrupted", "Cluster", "WorkerEnvironmentError", "run_batch"]


@dataclass(frozen=True)
class Cluster:
    """Where the tasks run: ``workers`` local processes, or the scheduler at ``address``.

    ``ship_engine``: upload the engine and the models to workers that lack them; ``scene_timeout_s``:
    fail a scene a worker has held this long (None: no limit); ``verbose``: local workers log Dask's
    INFO messages (else nothing).
    """

    workers: int = 2
    address: str | None = None
    ship_engine: bool = False
    scene_timeout_s: float | None = SCENE_TIMEOUT_S
    verbose: bool = False


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
                              "pip install 'sar-toolbox[batch]' (installed package) or "
                              "python -m pip install -r requirements/batch.txt (checkout)") from exc
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
    quiet = logging.INFO if cluster.verbose else logging.CRITICAL
    with distributed.LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",  # any free port: 8787 may be taken
                                  env=worker_environment(cluster.workers), silence_logs=quiet) as local, \
            distributed.Client(local) as client:
        yield client


def previous_records(summary: Path) -> dict[str, dict[str, Any]]:
    """The scene records of an earlier run's ``summary.json`` by input (empty when there is none)."""
    try:
        scenes = json.loads(summary.read_text(encoding="utf-8"))["scenes"]
        return {r["input"]: r for r in scenes if isinstance(r, dict) and "input" in r}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def keep_figures(record: dict[str, Any], previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A skipped scene's record with the figures and seconds of the run that made its outputs."""
    before = previous.get(record["input"])
    if record["status"] != "skipped" or not before or before.get("status") not in ("ok", "skipped"):
        return record
    return {**record, "figures": before.get("figures") or {}, "seconds": before.get("seconds", 0.0)}


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, after ``summary.json`` recorded what finished."""

    def __init__(self, finished: int, total: int, summary: Path) -> None:
        super().__init__(f"{finished} of {total} scenes finished")
        self.finished, self.total, self.summary = finished, total, summary


def _lost(source: Path, cause: str) -> dict[str, Any]:
    return {"input": str(source), "outputs": [], "status": "failed", "error": cause, "seconds": None,
            "figures": {}}


@dataclass
class _Batch:
    """The records of one run as they arrive, and summary.json rewritten after each."""

    inputs: Sequence[Path]
    summary: Path
    header: dict[str, Any]
    previous: dict[str, dict[str, Any]]
    on_done: Callable[[dict[str, Any]], None] | None
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)

    def add(self, i: int, record: dict[str, Any]) -> None:
        self.records[i] = keep_figures(record, self.previous)
        if self.on_done is not None:
            self.on_done(self.records[i])
        self.write()

    def write(self, **extra: Any) -> None:
        records = self.ordered()
        header = {**self.header, **extra, "seconds": round(time.perf_counter() - self.start, 3)}
        with atomic_output(self.summary) as tmp:
            Path(tmp).write_text(json.dumps({**header, "counts": count_statuses(records), "scenes": records},
                                            indent=2))

    def ordered(self) -> list[dict[str, Any]]:
        return [self.records[k] for k in sorted(self.records)]


def _result(future: Any, source: Path) -> dict[str, Any]:
    try:
        return dict(future.result())
    except Exception as exc:  # the worker died (out of memory, KilledWorker) or could not run the task
        return _lost(source, f"worker lost: {type(exc).__name__}: {exc}")


def _collect(client: Any, futures: dict[Any, int], batch: _Batch, scene_timeout_s: float | None) -> None:
    """Record every scene as it finishes; a scene over ``scene_timeout_s`` on a worker, or every scene
    when no worker is left for :data:`NO_WORKER_TIMEOUT_S`, is recorded as failed and abandoned."""
    distributed = _dask()
    pending, running_since = set(futures), dict[str, float]()
    no_worker_since: float | None = None
    while pending:
        try:
            done, pending = distributed.wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        for future in done:
            batch.add(futures[future], _result(future, batch.inputs[futures[future]]))
        now = time.monotonic()
        if scene_timeout_s:
            for key in client.run_on_scheduler(processing_keys, [f.key for f in pending]):
                running_since.setdefault(key, now)
            for future in [f for f in pending if now - running_since.get(f.key, now) > scene_timeout_s]:
                pending.discard(future)
                future.cancel()
                cause = f"timed out: no result {scene_timeout_s:g} s after a worker took it (--scene-timeout)"
                batch.add(futures[future], _lost(batch.inputs[futures[future]], cause))
        no_worker_since = None if client.nthreads() else (no_worker_since or now)
        if no_worker_since is not None and now - no_worker_since > NO_WORKER_TIMEOUT_S and pending:
            for future in pending:
                future.cancel()
                batch.add(futures[future], _lost(batch.inputs[futures[future]],
                          f"no Dask worker left for {NO_WORKER_TIMEOUT_S} s (all died or disconnected)"))
            pending = set()


def _record_finished(futures: dict[Any, int], batch: _Batch) -> None:
    """Ctrl-C: record the scenes whose results have arrived but were not yet taken."""
    for future, i in futures.items():
        if i not in batch.records and future.status in ("finished", "error"):
            batch.records[i] = keep_figures(_result(future, batch.inputs[i]), batch.previous)


def _interrupted(batch: _Batch, algorithm: str, out_dir: Path) -> BatchInterrupted:
    """Ctrl-C after submission: every scene recorded, summary written; the exception to raise.

    A scene without a result whose outputs are complete (finished while the cluster stopped, or by
    an earlier run) is recorded as skipped, with the earlier run's figures when there are some.
    """
    algo = ALGORITHMS[algorithm]
    for i, source in enumerate(batch.inputs):
        if i in batch.records:
            continue
        if algo.complete(source, out_dir):
            batch.records[i] = keep_figures(
                {"input": str(source), "outputs": [str(p) for p in algo.outputs(source, out_dir)],
                 "status": "skipped", "error": None, "seconds": 0.0, "figures": {}}, batch.previous)
        else:
            batch.records[i] = _lost(source, "interrupted before it finished; rerun the same command to "
                                             "process it")
    batch.write(interrupted=True)
    finished = sum(r["status"] != "failed" for r in batch.records.values())
    return BatchInterrupted(finished, len(batch.inputs), batch.summary)


def run_batch(
    algorithm: str,
    inputs: Sequence[Path],
    out_dir: Path,
    options: Options,
    cluster: Cluster,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``algorithm`` on every input; returns the records in input order and writes summary.json.

    Raises :class:`WorkerEnvironmentError` (nothing submitted) when the cluster cannot run it, and
    :class:`BatchInterrupted` on Ctrl-C once the summary records what finished.
    """
    check_choice(algorithm, ALGORITHMS, "batch algorithm")
    needs = needs_of(algorithm, inputs, out_dir, options)
    where = cluster.address or f"LocalCluster({cluster.workers} workers)"
    header = {"algorithm": algorithm, "version": version(), "output_dir": str(out_dir),
              "options": dict(options), "scheduler": where}
    summary = out_dir / SUMMARY_NAME
    batch = _Batch(inputs, summary, header, previous_records(summary), on_done)
    futures: dict[Any, int] = {}
    try:
        with dask_client(cluster) as client:
            check_cluster(client, needs, ship=cluster.ship_engine)
            futures = {client.submit(run_scene, algorithm, str(p), str(out_dir), dict(options),
                                     key=f"{algorithm}-{i}-{p.name}", pure=False, retries=0): i
                       for i, p in enumerate(inputs)}
            try:
                _collect(client, futures, batch, cluster.scene_timeout_s)
            except KeyboardInterrupt:
                _record_finished(futures, batch)
                client.cancel(list(futures))
                raise
    except KeyboardInterrupt:
        if not futures:
            raise  # nothing submitted, nothing written
        raise _interrupted(batch, algorithm, out_dir) from None
    return batch.ordered()
