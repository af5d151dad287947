"""Seeded synthetic SAR/optical scene pairs with a known misregistration.

A scene is a procedural land-cover layout (crop parcels, forest, a river and
a lake, roads, an urban district with building heights) rendered twice:

- **optical**: surface reflectance (red, green, blue, NIR; float32 0..1) with
  crop/forest texture, mild terrain shading and building shadows cast away
  from the sun;
- **SAR**: C-band-like sigma0 intensity (linear, float32) with per-class dB
  statistics, layover, double bounce and radar shadow of buildings along the
  look direction, then a known misregistration (sub-pixel shift, optionally an
  affine) applied to the noise-free sigma0, then fully developed speckle
  (``I = sigma0 * Gamma(L, 1/L)``) so speckle stays uncorrelated and unshifted.

Shift convention: ``shift_x = +1`` moves the SAR *content* one pixel to the
right (east, +column) of where the optical image has it, ``shift_y = +1`` one
pixel down (south, +row): ``sar[r, c] = aligned[r - shift_y, c - shift_x]``.
``skimage.registration.phase_cross_correlation(optical_like, sar)`` therefore
returns ``(-shift_y, -shift_x)``: the displacement that moves the SAR back onto
the optical grid. Both rasters are written on the *same* geotransform; the
misregistration lives in the content only.

Every random quantity of the layout is a pure function of world coordinates
(hashed lattices) and of draws made from ``seed`` before anything depends on
the shift, so the same seed gives the same world whatever shift, affine or
margin is asked for. Generation is numpy only; GeoTIFFs are written through
:mod:`engine.raster_io`. Statistics reproduced are documented in
``docs/SYNTHETIC.md`` (measured by ``tests/engine/test_synthetic.py``).

Modules, in the order a scene is made: :mod:`.validation` (parameters),
:mod:`.classes` (land-cover classes and their appearance), :mod:`.noise`
(hashed noise, speckle), :mod:`.layout`, :mod:`.sar`, :mod:`.resample` (PSF and
misregistration), :mod:`.optical`, :mod:`.scene` (the stages put together),
:mod:`.training` (training batches) and :mod:`.writing` (GeoTIFFs).
"""

from __future__ import annotations

from .classes import BUILDING_MAX_HEIGHT, BUILDING_MIN_HEIGHT, CROPS, REFLECTANCE, ROOFS, SAR_DB, LandCover
from .scene import SHIFT_CONVENTION, ScenePair, generate_scene_pair
from .training import TrainingPair, generate_training_batch, generate_training_pair, iter_training_pairs
from .validation import LOOK_DIRECTIONS, MAX_PIXELS, MAX_SIZE, MIN_SIZE
from .writing import METADATA_TAG, OPTICAL_BANDS, SAR_DESCRIPTION, SceneFiles, write_scene_pair

__all__ = [
    "BUILDING_MAX_HEIGHT",
    "BUILDING_MIN_HEIGHT",
    "CROPS",
    "LOOK_DIRECTIONS",
    "MAX_PIXELS",
    "MAX_SIZE",
    "METADATA_TAG",
    "MIN_SIZE",
    "OPTICAL_BANDS",
    "REFLECTANCE",
    "ROOFS",
    "SAR_DB",
    "SAR_DESCRIPTION",
    "SHIFT_CONVENTION",
    "LandCover",
    "SceneFiles",
    "ScenePair",
    "TrainingPair",
    "generate_scene_pair",
    "generate_training_batch",
    "generate_training_pair",
    "iter_training_pairs",
    "write_scene_pair",
]
