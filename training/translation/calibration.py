"""Batch-norm recalibration: recompute a network's running statistics on chosen data.

The generator normalises with batch statistics while training and with running averages
(momentum 0.1) at inference. When training mixes sources (synthetic and real scenes) the
running averages follow whatever the last batches held, so the exported model sees other
statistics than the ones it was trained with, and its colours shift. Recomputing them as
a cumulative average over batches of the data the model will be used on removes that
mismatch (the "precise BN" of Wu and Johnson 2021). Dropout is off while the statistics are
gathered, as it is at inference.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

logger = logging.getLogger(__name__)


@torch.no_grad()
def recalibrate_batchnorm(net: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace the running mean and variance of every batch-norm layer of ``net`` by their cumulative
    average over ``batches`` (forward passes only; weights unchanged); returns the number of layers.

    ``net`` is left in eval mode. Without batch-norm layers nothing changes; an empty ``batches`` is a
    :class:`ValueError` (the statistics would be reset to nothing).
    """
    layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    net.eval()
    for m in layers:
        m.train()
    seen = 0
    try:
        for x in batches:
            net(x)
            seen += 1
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        net.eval()
    if not seen:
        raise ValueError("recalibrate_batchnorm needs at least one batch.")
    return len(layers)
