"""Learned SAR–optical registration features: training, ONNX export and evaluation.

``python -m training.registration train|export|evaluate`` (see :mod:`.cli`).
Phase 1 trains a shared encoder whose dense, L2-normalised embeddings are
modality-invariant (exported as a ``Task.EMBED`` model that plugs into the
engine's FFT shift search); phase 2 adds a Siamese ``(dx, dy)`` regression head
(``Task.SHIFT_REGRESS``).
"""
