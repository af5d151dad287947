"""The ``combined`` method: two kinds of evidence in one correlation surface.

The learned embedding (:mod:`.deep`) and the CFOG/HOPC-style oriented gradients
(:mod:`..features`) are computed on the same pair; each volume is scaled to the same
mean energy per valid pixel and the two are stacked as one feature volume. The one
normalised cross-correlation of the stack is then close to the mean of the two
methods' surfaces: a peak both put at the same shift keeps its height, a peak that
only one of them has (a decoy of that method) is halved, and the noise of two partly
independent surfaces averages down. The search, the sub-pixel estimate and the
distinctness rule are the ones every method uses; its refusal threshold has its own
calibration (``make calibrate-registration``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...errors import RegistrationError
from ..features import FeatureExtractor, OrientedGradientFeatures


def equal_energy(volume: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``volume`` ``(c, h, w)`` divided by the root of its mean energy (sum over channels of squares)
    over the ``valid`` pixels; unchanged when that energy is zero."""
    energy = float(np.mean((volume[:, valid].astype(np.float64) ** 2).sum(axis=0))) if valid.any() else 0.0
    return volume / np.float32(np.sqrt(energy)) if energy > 0 else volume


class CombinedFeatures:
    """Several feature extractors of one stride stacked at equal energy (see the module doc)."""

    name = "combined"

    def __init__(self, parts: Sequence[FeatureExtractor]) -> None:
        if len(parts) < 2:
            raise RegistrationError(
                f"METHOD=combined stacks at least two feature extractors; got {len(parts)}: "
                "use METHOD=deep or METHOD=classical for one."
            )
        strides = {int(p.stride) for p in parts}
        if len(strides) != 1:
            raise RegistrationError(
                "METHOD=combined needs two feature extractors on one grid; got strides "
                f"{sorted(strides)}: use an embedding model of stride 1, or METHOD=deep."
            )
        self.parts = tuple(parts)
        self.stride = strides.pop()
        self.model_id = "+".join(p.model_id for p in parts)

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        s = self.stride
        h, w = image.shape[0] // s, image.shape[1] // s
        grid_valid = valid[: h * s, : w * s].reshape(h, s, w, s).all(axis=(1, 3))
        volumes = [p(image, valid)[:, :h, :w] for p in self.parts]
        return np.concatenate([equal_energy(v, grid_valid) for v in volumes]).astype(np.float32)


def combined_features(model_path: str | os.PathLike[str] | None = None) -> CombinedFeatures:
    """The deep embedding (``model_path`` or the bundled model) and the classical channels."""
    from .deep import OnnxEmbeddingFeatures

    return CombinedFeatures([OnnxEmbeddingFeatures(model_path), OrientedGradientFeatures()])
