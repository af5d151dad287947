"""SAR-to-optical translation: a pix2pix generator run tile by tile into a georeferenced RGB GeoTIFF.

The output is a *synthetic rendering* that looks like an optical image; it is not a
measurement of reflectance. :func:`translate` (files) and :func:`translate_array`
(arrays) both run on the engine's tiled core (:func:`engine.pipeline.apply_tiled`).
"""

from .api import TranslationResult, translate
from .render import DEFAULT_MODEL_ID, default_model_path, to_display, translate_array

__all__ = [
    "DEFAULT_MODEL_ID",
    "TranslationResult",
    "default_model_path",
    "to_display",
    "translate",
    "translate_array",
]
