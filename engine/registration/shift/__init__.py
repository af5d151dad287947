"""SAR–optical (and SAR–SAR) co-registration: dense features, FFT search, tie points, fitted transforms.

Entry points: :func:`coregister` and :func:`apply_transform` (imported lazily by
callers: ``from engine.registration.shift.api import coregister``). Methods are
feature extractors in a registry (:mod:`.features`): ``classical`` (CFOG/HOPC-style
oriented gradients) and ``deep`` (a ``Task.EMBED`` ONNX model, :mod:`.deep`).
"""

from __future__ import annotations

from .api import ApplyResult, CoregistrationResult, apply_transform, coregister

__all__ = ["ApplyResult", "CoregistrationResult", "apply_transform", "coregister"]
