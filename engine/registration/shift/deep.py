"""Learned dense embeddings (``Task.EMBED`` ONNX models) as a :class:`FeatureExtractor`.

The model maps a ``(1, bands, h, w)`` tile to a dense ``(1, c, h / s, w / s)``
embedding (``s`` = ``scale_factor`` of its metadata); the same FFT search as
the classical method then runs on the embeddings. Without a model (none given,
none in ``models/``), ``METHOD=deep`` says so and points to ``METHOD=classical``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ...errors import RegistrationError
from ...metadata import Task
from ...setup.bundled import models_dir
from ..prepare import prepare_image

logger = logging.getLogger(__name__)

NO_MODEL_MESSAGE = (
    "no registration (Task.EMBED) model was found among the bundled models; use METHOD=classical "
    "(or give the path of a Task.EMBED ONNX model)"
)


def find_embed_model(folder: Path | None = None) -> Path | None:
    """First bundled model whose metadata says ``Task.EMBED`` (None if there is none)."""
    from ...runtime import read_metadata

    folder = folder or models_dir()
    for path in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
        try:
            if read_metadata(path).task is Task.EMBED:
                return path
        except Exception as exc:  # a broken model must not hide the others
            logger.debug("skipping %s: %s", path, exc)
    return None


PREPARE_IMAGE = "prepare_image"
"""``extra['preprocess']`` value of models trained on :func:`prepare_image` output."""

EMBEDDING_NORM = "embedding_norm"
"""``extra`` key: how the engine normalises the embedding. Absent or :data:`PER_PIXEL`: L2 per pixel,
after zeroing invalid input pixels (the first models). :data:`AS_IS`: the model's output is used as it
comes (e.g. the ``guided`` models, whose local contrast normalisation is part of the network); invalid
pixels keep :func:`prepare_image`'s fill on the way in and are zeroed in the embedding, as the
classical method does."""
PER_PIXEL = "per_pixel"
AS_IS = "none"

MATCH_SIGMA = "match_sigma"
"""``extra`` key: Gaussian sigma (embedding pixels) applied to every embedding channel before the
search; absent or 0: none. A sharp learned embedding gives a correlation peak narrower than the
sampling allows, and its sub-pixel estimate locks onto whole pixels; the smoothing is chosen per
model on validation pairs and recorded in its metadata (and model card)."""


class OnnxEmbeddingFeatures:
    """Dense embeddings of a ``Task.EMBED`` model (``deep`` method)."""

    name = "deep"

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        from ...runtime import OnnxModel

        path = Path(model_path) if model_path else find_embed_model()
        if path is None:
            raise RegistrationError(NO_MODEL_MESSAGE)
        self.model = OnnxModel(path, intra_op_threads=1, tasks=[Task.EMBED])
        meta = self.model.metadata
        self.model_id = meta.model_id
        self.stride = meta.scale_factor
        raw = meta.extra.get(MATCH_SIGMA, "0")
        try:
            self.match_sigma = float(raw)
        except ValueError:
            self.match_sigma = -1.0
        if not self.match_sigma >= 0.0:  # also refuses NaN
            raise RegistrationError(
                f"model '{path.name}' has an invalid {MATCH_SIGMA} '{raw}' in its metadata; it must be "
                "a number >= 0 (re-export the model)."
            )

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from ...preprocess import to_model_input

        meta = self.model.metadata
        s = self.stride
        h, w = (image.shape[0] // s) * s, (image.shape[1] // s) * s
        if meta.extra.get("preprocess") == PREPARE_IMAGE:
            # the model was trained on prepare_image'd crops (log scaling of heavy-tailed SAR)
            x, ok = prepare_image(image[:h, :w], "auto", valid[:h, :w]), np.ones((h, w), dtype=bool)
        else:
            x, ok = to_model_input(image[:h, :w], meta, None)
        ok = ok & valid[:h, :w]
        as_is = meta.extra.get(EMBEDDING_NORM, PER_PIXEL) == AS_IS
        if not as_is:  # the first models were trained with zeros at invalid pixels
            x = np.where(ok, x, 0.0)
        batch = np.repeat(x.astype(np.float32)[np.newaxis, np.newaxis], meta.input_bands, axis=1)
        emb = self.model.run(batch)[0].astype(np.float32)
        if self.match_sigma > 0:
            from scipy import ndimage

            emb = ndimage.gaussian_filter(emb, (0, self.match_sigma, self.match_sigma), mode="nearest")
        if as_is:
            emb[:, ~ok.reshape(h // s, s, w // s, s).all(axis=(1, 3))] = 0.0
            return emb
        norm = np.sqrt((emb**2).sum(axis=0, keepdims=True)) + 1e-6
        return emb / norm
