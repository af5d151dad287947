"""The codec speed benchmark measures the codec and JPEG2000 side by side on a tiny scene, names the
provider it ran on and writes its Markdown section."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.codec_speed import SECTION, main


def test_codec_speed_on_a_tiny_scene(tmp_path: Path) -> None:
    out, markdown = tmp_path / "speed.json", tmp_path / "BENCHMARKS.md"
    assert main(["--size", "128", "--rate", "r1", "--repeats", "1", "--json", str(out),
                 "--markdown", str(markdown)]) == 0
    figures = json.loads(out.read_text())[0]
    from engine.runtime import available_providers

    assert figures["provider"] in available_providers()
    assert figures["encode_mpix_s"] > 0 and figures["decode_mpix_s"] > 0 and 0 < figures["codec_bpp"] < 32
    assert figures["jp2_encode_s"] > 0 and figures["encode_ratio"] > 0 and figures["decode_rss_mb"] > 0
    # JPEG2000 was matched to the codec's file size
    assert abs(figures["jp2_bpp"] - figures["codec_bpp"]) < 0.25 * figures["codec_bpp"]
    text = markdown.read_text()
    assert SECTION in text and "128 x 128" in text and "target <= 5x" in text
