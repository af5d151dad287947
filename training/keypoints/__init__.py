"""Learned keypoints (optical-SAR and SAR-SAR): network, augmentation, losses, training, ONNX export.

``python -m training.keypoints train|export|evaluate`` (see :mod:`.cli`). One network with a
fixed structural prior, two modality adapters and R2D2-style repeatability / reliability /
descriptor heads, exported as a ``Task.KEYPOINTS`` model for ``engine.registration.keypoints``.
"""
