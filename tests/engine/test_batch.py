"""The Dask batch runner: per-scene isolation, resume, summary, exit status and bad command lines."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.batch.cli import main
from engine.batch.runner import worker_threads

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenes(make_geotiff: Callable[..., Path], tmp_path: Path) -> Path:
    """Four small intensity scenes and one corrupt .tif in tmp/in."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        make_geotiff(height=48, width=40, seed=i, name=f"in/scene{i}.tif")
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    return folder


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_four_scenes_and_a_corrupt_one_on_two_local_workers_then_a_rerun_rewrites_nothing(
        scenes: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["todb", "--input-dir", str(scenes), "--output-dir", str(out), "--workers", "2",
                   "--no-progress"])
    assert status == 1  # one scene failed
    summary = _summary(out)
    by_name = {Path(s["input"]).name: s for s in summary["scenes"]}
    assert summary["counts"] == {"ok": 4, "failed": 1, "skipped": 0}
    assert by_name["broken.tif"]["status"] == "failed"
    error = by_name["broken.tif"]["error"]
    assert "broken.tif" in error and error.startswith("InputError")
    assert sorted(p.name for p in out.glob("*.tif")) == [f"scene{i}_db.tif" for i in range(4)]
    assert all(by_name[f"scene{i}.tif"]["figures"]["valid_pixels"] > 0 for i in range(4))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left

    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    time.sleep(0.05)
    status = main(["todb", "--input-dir", str(scenes), "--output-dir", str(out), "--workers", "2",
                   "--no-progress"])
    assert status == 1
    rerun = _summary(out)
    assert rerun["counts"] == {"ok": 0, "failed": 1, "skipped": 4}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")} == stamps
    # issue 24.6: the skipped scenes keep the figures and seconds of the run that made them
    for s in rerun["scenes"]:
        first = by_name[Path(s["input"]).name]
        if s["status"] == "skipped":
            assert (s["figures"], s["seconds"]) == (first["figures"], first["seconds"])


def test_compress_then_decompress_with_a_glob_on_one_worker(make_geotiff: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    for i in range(2):
        make_geotiff(height=64, width=64, seed=10 + i, name=f"s{i}.tif", holes=0.0)
    sarz = tmp_path / "sarz"
    assert main(["compress", "--inputs", str(tmp_path / "s*.tif"), "--output-dir", str(sarz),
                 "--workers", "1", "--rate", "r1", "--no-post-filter", "--no-progress"]) == 0
    records = _summary(sarz)["scenes"]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert all(r["figures"]["bpp"] > 0 and r["figures"]["model_id"] == "sarcodec-r1" for r in records)
    back = tmp_path / "back"
    assert main(["decompress", "--input-dir", str(sarz), "--output-dir", str(back), "--workers", "1",
                 "--no-progress"]) == 0
    assert sorted(p.name for p in back.glob("*.tif")) == ["s0.tif", "s1.tif"]


def test_compress_by_quality_and_by_a_retired_rate_name(make_geotiff: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    make_geotiff(height=64, width=64, seed=12, name="s0.tif", holes=0.0)
    common = ["--inputs", str(tmp_path / "s*.tif"), "--workers", "1", "--no-post-filter", "--no-progress"]
    choices = (("quality", ["--rate", "r3", "--quality", "smallest"]), ("retired", ["--rate", "h5"]))
    for name, choice in choices:
        assert main(["compress", *common, "--output-dir", str(tmp_path / name), *choice]) == 0
        assert _summary(tmp_path / name)["scenes"][0]["figures"]["model_id"] == "sarcodec-h1"


def test_a_bad_compress_target_is_refused_and_nothing_is_written(scenes: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["compress", "--input-dir", str(scenes), "--output-dir", str(out), "--target-bpp", "-1",
                 "--no-progress"]) == 2
    assert not out.exists()
    with pytest.raises(SystemExit):  # argparse: one target at most
        main(["compress", "--input-dir", str(scenes), "--output-dir", str(out), "--target-bpp", "1",
              "--target-psnr", "30"])


def test_a_batch_job_is_one_record_with_its_options_and_their_check(
        scenes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A job added to ALGORITHMS alone gets its subcommand, its options and their check."""
    import argparse

    from engine.batch import jobs

    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--factor", type=int, default=2)

    record = jobs.Algorithm("double", "double every scene", jobs.RASTER_SUFFIXES, ("_x2.tif",),
                            lambda source, outputs, options: {}, arguments,
                            lambda args: "--factor must be at least 1." if args.factor < 1 else None)
    monkeypatch.setitem(jobs.ALGORITHMS, "double", record)
    out = tmp_path / "out"
    assert main(["double", "--input-dir", str(scenes), "--output-dir", str(out), "--factor", "0",
                 "--no-progress"]) == 2
    assert "--factor must be at least 1." in caplog.text and not out.exists()


def test_an_empty_input_folder_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    assert main(["todb", "--input-dir", str(empty), "--output-dir", str(out), "--no-progress"]) == 2
    assert not out.exists()


def test_an_output_folder_that_cannot_be_made_is_refused(scenes: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "out"
    assert main(["todb", "--input-dir", str(scenes), "--output-dir", str(out), "--no-progress"]) == 2


def test_an_unreachable_scheduler_fails_clearly_within_30_s_and_writes_nothing(
        scenes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    start = time.monotonic()
    status = main(["todb", "--input-dir", str(scenes), "--output-dir", str(out),
                   "--scheduler", "tcp://127.0.0.1:9", "--no-progress"])
    assert status == 2
    assert time.monotonic() - start < 30
    assert "Could not reach the Dask scheduler at 'tcp://127.0.0.1:9'" in caplog.text
    assert list(out.iterdir()) == []


def test_worker_threads_share_the_cores() -> None:
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(1, cores=16) == 16
    assert worker_threads(4, cores=16) == 4
    assert worker_threads(8, cores=2) == 1


def test_the_engine_core_and_the_plugin_never_import_dask() -> None:
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "names = [m.name for m in pkgutil.walk_packages(engine.__path__, 'engine.')"
        " if not m.name.startswith('engine.batch')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, 'dask imported'\n"
        "print('ok', len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_translate_renders_every_scene_with_the_given_model(scenes: Path, tmp_path: Path) -> None:
    from tests.engine.tiny_translation import build_tiny_translation

    model = build_tiny_translation(tmp_path / "tiny.onnx")
    out = tmp_path / "rgb"
    status = main(["translate", "--inputs", str(scenes / "scene*.tif"), "--output-dir", str(out),
                   "--model", str(model), "--workers", "1", "--no-progress"])
    assert status == 0
    records = _summary(out)["scenes"]
    assert [r["figures"]["model_id"] for r in records] == ["tiny-translation"] * 4
    assert sorted(p.name for p in out.glob("*.tif")) == [f"scene{i}_rgb.tif" for i in range(4)]


def test_local_workers_get_their_share_of_the_cores() -> None:
    import os

    from engine.batch.runner import Cluster, dask_client, worker_environment
    from engine.runtime import THREADS_ENV

    expected = worker_environment(2)
    assert expected[THREADS_ENV] == expected["OMP_NUM_THREADS"] == str(worker_threads(2))
    with dask_client(Cluster(workers=2)) as client:
        seen = client.run(lambda: (os.environ.get(THREADS_ENV), os.environ.get("OMP_NUM_THREADS")))
    assert len(seen) == 2
    assert set(seen.values()) == {(expected[THREADS_ENV], expected["OMP_NUM_THREADS"])}


def test_batch_compress_codes_every_band_and_names_a_truncated_file(make_grd: Callable[..., Path],
                                                                     tmp_path: Path) -> None:
    """A dual-pol GCP-only scene gives one file with both bands (figures per band); a truncated scene is
    recorded with the file and what is wrong, not as an unexpected error (issue 24.2, 24.5)."""
    from tests.conftest import truncate_file

    (tmp_path / "in").mkdir()
    make_grd(name="in/s1.tif")
    truncate_file(make_grd(height=256, width=256, name="in/cut.tif"))
    out = tmp_path / "out"
    assert main(["compress", "--input-dir", str(tmp_path / "in"), "--output-dir", str(out), "--workers", "1",
                 "--rate", "r1", "--input-kind", "amplitude", "--no-post-filter", "--no-progress"]) == 1
    by_name = {Path(s["input"]).name: s for s in _summary(out)["scenes"]}
    bands = by_name["s1.tif"]["figures"]["bands"]
    assert [(b["band"], b["description"]) for b in bands] == [(1, "VV"), (2, "VH")]
    assert all(b["bpp"] > 0 for b in bands)
    error = by_name["cut.tif"]["error"]
    assert error.startswith("RasterIOError: Reading ") and "cut.tif' failed" in error and "truncated" in error
    assert sorted(p.name for p in out.iterdir()) == ["s1.sarz", "summary.json"]


def test_dask_logs_nothing_unless_verbose(make_geotiff: Callable[..., Path], tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24.6: Dask's INFO lines drowned the progress bar."""
    caplog.set_level(logging.INFO)
    make_geotiff(height=32, width=32, name="one.tif")
    command = ["todb", "--inputs", str(tmp_path / "one.tif"), "--workers", "1", "--no-progress"]
    assert main([*command, "--output-dir", str(tmp_path / "quiet")]) == 0
    assert [r.getMessage() for r in caplog.records if r.name.startswith("distributed")] == []
    assert "1 ok" in caplog.text
    caplog.clear()
    assert main([*command, "--output-dir", str(tmp_path / "verbose"), "--verbose"]) == 0
    assert any(r.name.startswith("distributed") and r.levelno == logging.INFO for r in caplog.records)


def _default_sigint() -> None:
    """The runner gets Ctrl-C as from a terminal, even when the tests run as a background job (a shell
    starts background jobs with SIGINT ignored, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_sigint_writes_the_summary_of_what_finished_and_exits_cleanly(
        make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 24.6: Ctrl-C printed a traceback and could leave finished outputs without summary.json."""
    (tmp_path / "in").mkdir()
    scenes = 12  # 512 px: on a quiet machine 8 scenes of 256 px all finished before the interrupt arrived
    for i in range(scenes):
        make_geotiff(height=512, width=512, seed=i, name=f"in/s{i}.tif", holes=0.0)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "engine.batch", "compress", "--input-dir", str(tmp_path / "in"),
         "--output-dir", str(out), "--workers", "1", "--rate", "r1", "--no-post-filter", "--no-progress"],
        cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not (out / "summary.json").is_file() and time.monotonic() < deadline:  # a first scene is done
            time.sleep(0.1)
        runner.send_signal(signal.SIGINT)
        start = time.monotonic()
        _, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert time.monotonic() - start < 30
    assert runner.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "Interrupted:" in stderr and "Rerun the same command" in stderr
    summary = _summary(out)
    assert summary["interrupted"] is True and len(summary["scenes"]) == scenes
    by_name = {Path(s["input"]).name: s for s in summary["scenes"]}
    done = sorted(p.stem for p in out.glob("*.sarz"))
    assert done, "no scene finished before the interrupt"
    assert all(by_name[f"{stem}.tif"]["status"] in ("ok", "skipped") for stem in done)
    assert all(s["error"].startswith("interrupted") for s in summary["scenes"] if s["status"] == "failed")
    assert len(done) < scenes  # it was interrupted, not finished


@pytest.mark.slow
def test_a_scene_over_the_timeout_fails_with_the_cause_and_the_run_ends(
        make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 30: the run never waits without bound. The scene must take well over the timeout plus two
    polls (``runner.POLL_S``) on a worker: 2048 x 2048 takes about 4 s on one idle core here (512 x 1024
    took 1.1 s once the codec got faster, and the run then finished before its timeout)."""
    make_geotiff(height=2048, width=2048, name="big.tif", holes=0.0)
    out = tmp_path / "out"
    start = time.monotonic()
    assert main(["compress", "--inputs", str(tmp_path / "big.tif"), "--output-dir", str(out), "--workers",
                 "1", "--rate", "r1", "--no-post-filter", "--no-progress", "--scene-timeout", "0.5"]) == 1
    assert time.monotonic() - start < 60
    (record,) = _summary(out)["scenes"]
    assert record["status"] == "failed" and record["error"].startswith("timed out")
    assert "--scene-timeout" in record["error"]


@pytest.mark.slow
def test_a_worker_that_dies_during_a_scene_fails_that_scene_with_the_cause(
        make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 30: the worker process is killed while it compresses; the scene is failed, the run ends.

    The worker is killed once it holds the scene open (it reads it from its first check to the end of the
    encoding, seconds for this size), whatever the machine's load: no CPU-time threshold to race."""
    import threading

    import dask
    import psutil

    scene = make_geotiff(height=2048, width=2048, name="big.tif", holes=0.0)  # seconds to compress
    out = tmp_path / "out"
    status: list[int] = []
    command = ["compress", "--inputs", str(scene), "--output-dir", str(out), "--workers", "1",
               "--rate", "r1", "--no-post-filter", "--no-progress"]

    def reading_the_scene(process: psutil.Process) -> bool:
        return ("spawn_main" in " ".join(process.cmdline())  # a worker, not the runner itself
                and any(Path(f.path) == scene for f in process.open_files()))

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # first death: KilledWorker
        run = threading.Thread(target=lambda: status.append(main(command)))
        run.start()
        killed, deadline = False, time.monotonic() + 120
        while not killed and run.is_alive() and time.monotonic() < deadline:
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if reading_the_scene(child):
                        child.kill()
                        killed = True
            time.sleep(0.02)
        run.join(timeout=120)
    assert killed and status == [1]
    (record,) = _summary(out)["scenes"]
    assert record["status"] == "failed"
    assert record["error"].startswith("worker lost: KilledWorker") and "big.tif" in record["error"]
    assert not (out / "big.sarz").exists()  # no output for the scene
