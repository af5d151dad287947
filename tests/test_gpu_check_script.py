"""scripts/gpu_check.sh cannot run without a GPU; check at least that it parses and that every
benchmark option it passes exists, so it does not rot between the rare runs on a GPU machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "gpu_check.sh"


def test_gpu_check_script_parses() -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_every_benchmark_option_the_script_passes_exists() -> None:
    text = SCRIPT.read_text().replace("\\\n", " ")
    calls = re.findall(r"\$PY -m (benchmarks\.\w+)([^>\n]*)", text)
    wanted = {"benchmarks.pipeline", "benchmarks.codec_speed", "benchmarks.registration"}
    assert {m for m, _ in calls} >= wanted
    for module, args in calls:
        helptext = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT,
                                  capture_output=True, text=True, timeout=120, check=False).stdout
        for flag in re.findall(r"(--[a-z][a-z-]*)", args):
            assert flag in helptext, f"{module} has no option {flag}"
