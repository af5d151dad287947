"""Summary of a ``scripts/gpu_train.sh`` run: per family, new vs shipped scores and whether the new model
beats the shipped one; model cards for the keypoint and translation models (the codec's is written by
``hyper export-joint``).

    python -m scripts.gpu_train_summary OUT

Reads ``OUT/environment.json``, ``OUT/<family>/status.json``, ``log.txt`` and the evaluation JSON of each
family; writes ``OUT/summary.json``, ``OUT/summary.md`` and ``OUT/models/{kp-gpu,sar2opt-gpu}.md``.
Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("scripts.gpu_train_summary")

FAMILIES = ("codec", "keypoints", "translation")
SHIPPED = {"codec": "sarcodec-h5", "keypoints": "kp-hscp-r2d2-v1", "translation": "sar2opt-colourise-v1"}
NEW = {"codec": "sarcodec-gpu", "keypoints": "kp-gpu", "translation": "sar2opt-gpu"}
CRITERION = {
    "codec": "PSNR gain over the shipped model's rate-distortion curve at the new model's bpp (real held-out "
             "images; synthetic without them) > 0 dB",
    "keypoints": "higher mean success rate (corner error < 3 px) on the first held-out set (ties: more "
                 "correct matches)",
    "translation": "higher mean SSIM on the first held-out set",
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def trained_steps(folder: Path) -> int | None:
    """The steps a family's checkpoint reached (``steps.txt``, written by the script), else the last step
    its log reports (``step N``)."""
    recorded = folder / "steps.txt"
    if recorded.is_file() and recorded.read_text().strip().isdigit():
        return int(recorded.read_text())
    log = folder / "log.txt"
    steps = re.findall(r"\bstep (\d+)\b", log.read_text(errors="replace")) if log.is_file() else []
    return int(steps[-1]) if steps else None


def codec_scores(compare: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """New vs shipped figures of ``hyper compare`` and whether the new model beats the shipped one."""
    mean = compare.get("real_mean", compare)
    scores = {k: mean.get(k) for k in ("shipped_bpp", "shipped_psnr", "tuned_bpp", "tuned_psnr",
                                       "gain_db_at_matched_bpp")}
    gain = scores["gain_db_at_matched_bpp"]
    if gain is not None:
        return scores, gain > 0
    if None in (scores["tuned_bpp"], scores["shipped_bpp"]):
        return scores, None
    # outside the shipped curve: only a model that is better on both axes beats it
    better = scores["tuned_bpp"] <= scores["shipped_bpp"] and scores["tuned_psnr"] >= scores["shipped_psnr"]
    return scores, better


def _first_set(sets: Sequence[str]) -> str:
    real = [s for s in sets if s != "synthetic"]
    return (real or list(sets))[0]


def keypoint_scores(report: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """Per set, new and shipped means; whether the new model beats the shipped one (:data:`CRITERION`)."""
    summary = report["summary"]
    new = next(k for k in summary if Path(k).stem == NEW["keypoints"])
    old = next(k for k in summary if Path(k).stem == SHIPPED["keypoints"])
    scores = {"new": summary[new], "shipped": summary[old]}
    sets = list(summary[new])
    if not sets:
        return scores, None
    s = _first_set(sets)
    a, b = summary[new][s], summary[old][s]
    scores["set"] = s
    return scores, (a["success"], a["ncm"]) > (b["success"], b["ncm"])


def translation_scores(report: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """Per set, new and shipped means; whether the new model beats the shipped one (:data:`CRITERION`)."""
    summary = report["summary"]
    scores: dict[str, Any] = {"new": {}, "shipped": {}}
    for set_name, methods in summary.items():
        scores["new"][set_name] = methods.get(NEW["translation"])
        scores["shipped"][set_name] = methods.get(SHIPPED["translation"])
    if not summary:
        return scores, None
    s = _first_set(list(summary))
    a, b = scores["new"][s], scores["shipped"][s]
    scores["set"] = s
    return scores, None if a is None or b is None else a["ssim"] > b["ssim"]


READERS = {"codec": ("compare.json", codec_scores), "keypoints": ("evaluate.json", keypoint_scores),
           "translation": ("evaluate.json", translation_scores)}


def family_summary(out: Path, family: str) -> dict[str, Any]:
    """What one family's folder says: status, seconds, steps, scores, verdict, model files."""
    folder = out / family
    status = _read(folder / "status.json") or {"status": "not run", "seconds": None}
    result: dict[str, Any] = {**status, "steps": trained_steps(folder), "model": NEW[family],
                              "shipped": SHIPPED[family], "criterion": CRITERION[family],
                              "beats_shipped": None}
    name, reader = READERS[family]
    report = _read(folder / name)
    if report is not None:
        try:
            result["scores"], result["beats_shipped"] = reader(report)
        except (KeyError, StopIteration, TypeError) as exc:
            result["scores_error"] = f"could not read {name}: {exc!r}"
    return result


def card(family: str, summary: dict[str, Any], environment: dict[str, Any]) -> str:
    """A short model card of a keypoint or translation model trained by the GPU run."""
    title = {"keypoints": "keypoint detector/descriptor", "translation": "SAR-to-optical translation"}[family]
    lines = [f"# {NEW[family]}: {title} trained by scripts/gpu_train.sh", "",
             f"Trained on {environment.get('device')} (torch {environment.get('torch')}) with a wall-time "
             f"budget of {environment.get('minutes', {}).get(family)} minutes: "
             f"{summary.get('steps')} steps, with the recipe of `{SHIPPED[family]}` (its model card); "
             f"real data: {environment.get('real_data') or 'none (synthetic only)'}. Exported with the "
             "parity check against PyTorch (export log in the run folder).", "",
             f"Compared with the shipped `{SHIPPED[family]}` on the held-out protocol of its card "
             f"(`python -m training.{family} evaluate`): {CRITERION[family]}: "
             f"**{'beats' if summary.get('beats_shipped') else 'does not beat'} the shipped model**.", "",
             "| set | model | scores |", "|---|---|---|"]
    scores = summary.get("scores") or {}
    for who in ("new", "shipped"):
        for set_name, values in (scores.get(who) or {}).items():
            text = ", ".join(f"{k} {v:.3f}" for k, v in (values or {}).items() if isinstance(v, float))
            lines.append(f"| {set_name} | {NEW[family] if who == 'new' else SHIPPED[family]} | {text} |")
    return "\n".join(lines) + "\n"


def markdown(summary: dict[str, Any]) -> str:
    env = summary["environment"] or {}
    lines = ["# GPU training run", "", f"Device: {env.get('device')}, torch {env.get('torch')}; real data: "
             f"{env.get('real_data') or 'none'}.", "",
             "| family | status | seconds | steps | new model | beats shipped | criterion |",
             "|---|---|---:|---:|---|---|---|"]
    for family in FAMILIES:
        f = summary["families"][family]
        lines.append(f"| {family} | {f['status']} | {f['seconds']} | {f['steps']} | {f['model']} | "
                     f"{f['beats_shipped']} | {f['criterion']} |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the summary (and cards) of the run folder given as the only argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        logger.error("usage: python -m scripts.gpu_train_summary OUT (the folder scripts/gpu_train.sh wrote)")
        return 2
    out = Path(args[0])
    environment = _read(out / "environment.json") or {}
    summary = {"environment": environment, "families": {f: family_summary(out, f) for f in FAMILIES}}
    (out / "models").mkdir(exist_ok=True)
    for family in FAMILIES:
        found = summary["families"][family]
        if family != "codec" and (out / "models" / f"{NEW[family]}.onnx").is_file():
            _write(out / "models" / f"{NEW[family]}.md", card(family, found, environment))
        found["files"] = sorted(p.name for p in (out / "models").glob(f"{NEW[family]}*"))
    _write(out / "summary.json", json.dumps(summary, indent=2, default=str))
    _write(out / "summary.md", markdown(summary))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
