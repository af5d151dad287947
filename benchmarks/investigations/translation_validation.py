"""Translation settings are chosen here, on a validation split of the TRAINING pairs, never on held-out ones.

Validation pairs: :data:`VALIDATION` (three 3MOS Sentinel-1 training pairs, one per scene type with
two or more training pairs). A model scored here must have been trained with them held out as well
(``train --held-out <HELD_OUT> <VALIDATION>``). The mean-colour baseline is the mean of the other
seven training pairs, as a model trained on them could know it. Scores as in ``make bench-translation``.

    python -m benchmarks.investigations.translation_validation runs/val/models/*.onnx
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from training.translation.data import Pair

logger = logging.getLogger(__name__)

VALIDATION = ("SEN_city_6", "SEN_rural_7", "SEN_water_6")


def _translate(pair: Pair, model: str) -> np.ndarray:
    from engine.translation import translate_array

    return translate_array(pair.sar_db, model, input_kind="db")


def validate(models: Sequence[str], real_root: str) -> dict[str, dict[str, float]]:
    """Mean scores per method (grey stretch, flat mean colour, each model) over the validation pairs."""
    from training.translation.data import HELD_OUT, load_3mos, split_held_out
    from training.translation.evaluate import grey_stretch, mean_colour_image, mean_rgb, score

    train, validation = split_held_out(load_3mos(real_root), (*HELD_OUT, *VALIDATION))
    validation = [p for p in validation if p.name in VALIDATION]
    colour = mean_rgb(train)
    renderers: dict[str, Callable[[Pair], np.ndarray]] = {
        "grey-stretch": lambda p: grey_stretch(p.sar_db),
        "mean-colour": lambda p: mean_colour_image(colour, p.shape),
    }
    for path in models:
        renderers[path] = functools.partial(_translate, model=path)
    out: dict[str, dict[str, float]] = {}
    for name, render in renderers.items():
        rows = [score(np.nan_to_num(render(p)), p.rgb) for p in validation]
        out[name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        logger.info("%s: %s", name, " ".join(f"{k}={v:.3f}" for k, v in out[name].items()))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.investigations.translation_validation",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="translation .onnx files trained without the validation pairs")
    p.add_argument("--data", default="../shared/data/real")
    p.add_argument("--json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scores = validate(args.models, args.data)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(scores, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
