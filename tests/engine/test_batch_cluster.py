"""The batch runner on a real Dask cluster whose processes cannot import the engine (issue 30).

A ``dask scheduler`` and two ``dask worker`` processes are started on the loopback interface from
an empty folder, as on a cluster node where the toolbox is not installed. Without ``--ship-engine``
the runner must stop within 30 s saying what to install; with it, it must ship and finish. Every
process is stopped by the test (its whole process group) and checked gone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.batch.cli import main

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60


def _start(args: list[str], folder: Path, log: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(folder / log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=folder, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process group, SIGKILL after 15 s; then check that no process of them is left."""
    for p in processes:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
    deadline = time.monotonic() + 10  # a nanny's worker process and resource tracker exit after it
    while (left := [p.pid for p in processes if _group_alive(p.pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        os.killpg(pid, signal.SIGKILL)
    assert not left, f"processes left behind in groups {left}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def engineless_cluster(tmp_path: Path) -> Iterator[str]:
    """The address of a scheduler with two workers, none of which can import ``engine``."""
    from dask.distributed import Client

    node = tmp_path / "node"
    node.mkdir()
    processes = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", "scheduler.json"], node, "scheduler.log")]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (node / "scheduler.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads((node / "scheduler.json").read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        processes += [_start(["worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                             node, f"worker{i}.log") for i in range(2)]
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
            # a lambda travels by value; the workers' Python finds no 'engine'
            assert client.run(lambda: str(importlib.util.find_spec("engine"))) == dict.fromkeys(
                client.scheduler_info()["workers"], "None")
        yield address
    finally:
        _stop(processes)


def test_workers_without_the_engine_refuse_within_30_s_then_ship_and_finish(
        engineless_cluster: str, make_geotiff: Callable[..., Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "in").mkdir()
    for i in range(2):
        make_geotiff(height=64, width=64, seed=20 + i, name=f"in/s{i}.tif", holes=0.0)
    out = tmp_path / "out"
    command = ["compress", "--input-dir", str(tmp_path / "in"), "--output-dir", str(out), "--rate", "r1",
               "--no-post-filter", "--scheduler", engineless_cluster, "--no-progress"]

    start = time.monotonic()
    assert main(command) == 2
    assert time.monotonic() - start < 30
    message = caplog.text
    # the two workers and the scheduler
    assert message.count("cannot import the engine ('engine'): ModuleNotFoundError") == 3
    assert "--ship-engine" in message and "PYTHONPATH" in message and "sar-toolbox[batch]" in message
    assert list(out.iterdir()) == []  # nothing submitted, nothing written

    assert main([*command, "--ship-engine"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 2, "skipped": 0, "failed": 0}
    assert all(s["figures"]["model_id"] == "sarcodec-r1" for s in summary["scenes"])
    assert sorted(p.name for p in out.glob("*.sarz")) == ["s0.sarz", "s1.sarz"]
