"""The run context: spans map sub-progress, check raises on cancel, say forwards."""

from __future__ import annotations

import pytest

from engine.errors import CancelledError
from engine.run import QUIET, Run


def test_span_maps_fractions_onto_the_parent_range() -> None:
    seen: list[float] = []
    run = Run.of(progress=seen.append).span(0.5, 1.0).span(0.0, 0.5)
    run.progress(0.0)
    run.progress(1.0)
    run.progress(2.0)  # clamped
    assert seen == [50.0, 75.0, 75.0]


def test_check_raises_only_when_cancelled() -> None:
    flag = {"stop": False}
    run = Run.of(is_cancelled=lambda: flag["stop"])
    run.check()
    flag["stop"] = True
    with pytest.raises(CancelledError, match="nothing was written"):
        run.check("Compression")


def test_say_forwards_to_the_user_log_and_quiet_run_is_silent() -> None:
    lines: list[str] = []
    Run.of(log=lines.append).say("hello")
    QUIET.say("nobody hears this")
    QUIET.progress(0.3)
    QUIET.check()
    assert lines == ["hello"]


def test_steps_check_before_and_report_after_each_step() -> None:
    seen: list[float] = []
    flag = {"stop": False}
    run = Run.of(progress=seen.append, is_cancelled=lambda: flag["stop"])
    assert list(run.steps(10, 4)) == [0, 4, 8]
    assert seen == [40.0, 80.0, 100.0]
    steps = run.steps(10, 4, "Conversion")
    assert next(steps) == 0
    flag["stop"] = True
    with pytest.raises(CancelledError, match="Conversion was cancelled"):
        next(steps)


def test_result_and_background_return_on_cancel_without_waiting_for_the_work() -> None:
    import threading
    from concurrent.futures import Future

    flag = {"stop": False}
    run = Run.of(is_cancelled=lambda: flag["stop"])
    assert run.background("Sum", sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):  # the work's own error reaches the caller
        run.background("Division", lambda: 1 / 0)
    never: Future[int] = Future()
    release = threading.Event()

    def blocked() -> int:
        release.wait(30)  # a run that waited for it would return 1 instead of raising
        return 1

    flag["stop"] = True
    try:
        with pytest.raises(CancelledError, match="Waiting was cancelled"):
            run.result(never, "Waiting")
        with pytest.raises(CancelledError, match="Blocked was cancelled"):
            run.background("Blocked", blocked)
    finally:
        release.set()


def test_gdal_callback_reports_the_fraction_and_asks_gdal_to_stop_on_cancel() -> None:
    seen: list[float] = []
    flag = {"stop": False}
    callback = Run.of(progress=seen.append, is_cancelled=lambda: flag["stop"]).span(0.5, 1.0).gdal_callback()
    assert callback(0.5, "", None) == 1
    flag["stop"] = True
    assert callback(0.6, "", None) == 0
    assert seen == [75.0, 80.0]
