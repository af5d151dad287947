"""A learned keypoint model (ONNX, task ``keypoints``) as a :class:`.detect.Detector`.

The model contract (see the model card and ``training/keypoints``): inputs ``image``
``(n, 1, h, w)`` float32 (the prepared image, :mod:`..prepare`; h, w multiples of 16)
and ``modality`` ``(n, 1)`` float32 (0 = SAR, 1 = optical); outputs ``repeatability``
and ``reliability`` ``(n, 1, h, w)`` in [0, 1] and ``descriptors`` ``(n, d, h, w)``,
L2-normalised along the channels. The keypoint score is repeatability x reliability.
Scores run through the tiled core; descriptors are computed only for the tiles
that hold keypoints and sampled at the keypoints (bilinear, renormalised).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ...errors import ModelError
from ...metadata import Task
from ...runtime import OnnxModel
from .classical import check_descriptor, keypoint_axes, sar_gradients
from .detect import Descriptions

logger = logging.getLogger(__name__)

MODALITY_CODE = {"sar": 0.0, "optical": 1.0}
REQUIRED_INPUTS = ("image", "modality")
REQUIRED_OUTPUTS = ("repeatability", "reliability", "descriptors")
MIN_SCORE = 1e-3
"""Scores below this are not keypoints."""
MAX_TILE = 512
"""A level up to this size runs as one tile (no overlap overhead); larger ones in tiles of this side."""
SIDE_MULTIPLE = 16
BATCH_SIZE = 1
"""Tiles per model run: a 512 px tile with 128 descriptor channels and the network's activations takes
hundreds of MB in ONNX Runtime's arena (batches of 4 peaked at 2.9 GB on a 1400 x 1400 pair)."""
CACHE_BYTES = 256 * 2**20
"""Descriptor tiles of the score pass kept (float16) for the description pass, at most this many bytes."""


class LearnedDetector:
    """Keypoints, scores and descriptors from an ONNX keypoint model."""

    name = "learned"
    batch_size = BATCH_SIZE

    def __init__(self, path: str | os.PathLike[str], intra_op_threads: int | None = None) -> None:
        self.model = OnnxModel(path, intra_op_threads=intra_op_threads, tasks=[Task.KEYPOINTS])
        meta = self.model.metadata
        inputs = [i.name for i in self.model.session.get_inputs()]
        missing = [n for n in REQUIRED_INPUTS if n not in inputs]
        missing += [n for n in REQUIRED_OUTPUTS if n not in self.model.output_names]
        if missing or meta.input_bands != 1:
            raise ModelError(
                f"Model '{meta.model_id}' is a keypoints model but lacks "
                f"{', '.join(missing) or 'one input band'} (inputs {inputs}, outputs "
                f"{self.model.output_names}); re-export it with "
                "'python -m training.keypoints export'."
            )
        self.model_id = meta.model_id
        self.tile_size = meta.tile_size
        self.overlap = meta.overlap
        self.margin = float(max(4, meta.overlap // 4))
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_bytes = 0

    @staticmethod
    def _key(tile: np.ndarray, modality: str) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(tile, np.float32).tobytes() + modality.encode(),
                               digest_size=16).digest()

    def _remember(self, key: bytes, desc: np.ndarray) -> None:
        """Keep a tile's descriptors (content-addressed, so a hit is always the same tile)."""
        stored = desc.astype(np.float16)
        self._cache[key] = stored
        self._cache_bytes += stored.nbytes
        while self._cache_bytes > CACHE_BYTES and self._cache:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes

    def _run(self, batch: np.ndarray, modality: str, outputs: list[str]) -> list[np.ndarray]:
        code = np.full((len(batch), 1), MODALITY_CODE[modality], np.float32)
        return self.model.run_all(batch, extra={"modality": code}, outputs=outputs)

    def tile_for(self, shape: tuple[int, int]) -> int:
        side = -(-max(shape) // SIDE_MULTIPLE) * SIDE_MULTIPLE
        return max(self.tile_size, min(MAX_TILE, side))

    def scores(self, batch: np.ndarray, modality: str) -> np.ndarray:
        rep, rel, desc = self._run(batch, modality, ["repeatability", "reliability", "descriptors"])
        for tile, d in zip(batch, desc, strict=True):
            self._remember(self._key(tile[0], modality), d)
        s = (rep * rel).astype(np.float32)
        return np.where(s >= MIN_SCORE, s, 0.0)

    def describer(self, modality: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Descriptions]:
        from scipy import ndimage

        def describe_tile(image: np.ndarray, valid: np.ndarray, xy: np.ndarray) -> Descriptions:
            cached = self._cache.get(self._key(image, modality))
            if cached is None:
                (desc_map,) = self._run(image[None, None], modality, ["descriptors"])
                cached = desc_map[0]
            idx = xy - 0.5
            desc = np.stack([ndimage.map_coordinates(c.astype(np.float32), [idx[:, 1], idx[:, 0]], order=1,
                                                     mode="nearest") for c in cached], axis=1)
            desc /= np.linalg.norm(desc, axis=1, keepdims=True) + 1e-12
            gx, gy = sar_gradients(image)
            angle = keypoint_axes(gx, gy, xy)
            check = check_descriptor(image, valid, xy, angle)
            return Descriptions(desc.astype(np.float32), None, check, angle)

        return describe_tile
