"""The trainers' console entry points (``sar-toolbox-train-<family>``, ``python -m training.<family>``)."""

from __future__ import annotations

import os
import sys
from types import ModuleType

import pytest

from training import console


def _missing(name: str) -> ModuleType:
    raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def test_a_missing_training_package_is_a_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(console.importlib, "import_module", lambda _name: _missing("torch"))
    assert console.run_family("compression", ["--help"]) == 2
    assert "needs the Python package 'torch'" in caplog.text and "sar-toolbox[train]" in caplog.text
    assert "The help needs it too" in caplog.text  # why --help cannot be shown without it


def test_another_missing_module_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console.importlib, "import_module", lambda _name: _missing("engine"))
    with pytest.raises(ModuleNotFoundError, match="engine"):
        console.run_family("compression", [])


@pytest.mark.parametrize("family", ["compression", "registration", "keypoints", "translation"])
def test_each_entry_point_runs_its_family_cli(family: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit) as done:
        console.run_family(family, ["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m training.{family}")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # set before torch is imported


@pytest.mark.parametrize("family", ["compression", "registration", "keypoints", "translation"])
def test_the_usage_line_names_the_console_script_that_was_run(
        family: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [f"/opt/venv/bin/sar-toolbox-train-{family}", "--help"])
    with pytest.raises(SystemExit):
        getattr(console, family)()
    assert capsys.readouterr().out.startswith(f"usage: sar-toolbox-train-{family} [-h]")
