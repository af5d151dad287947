"""The codec speed benchmark measures a tiny scene and names the provider it ran on."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.codec_speed import main


def test_codec_speed_on_a_tiny_scene(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    assert main(["--size", "128", "--rate", "r1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    from engine.runtime import available_providers

    assert figures["provider"] in available_providers()
    assert figures["encode_mpix_s"] > 0 and figures["decode_mpix_s"] > 0 and 0 < figures["bpp"] < 32
