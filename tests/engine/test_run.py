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
