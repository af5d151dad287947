"""Batch-norm recalibration: running statistics recomputed as the cumulative average of the given batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.translation.calibration import recalibrate_batchnorm


def test_running_statistics_become_the_average_of_the_batches() -> None:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(2, momentum=0.1)
    net = nn.Sequential(bn)
    batches = [torch.randn(4, 2, 8, 8) * s + m for m, s in ((1.0, 2.0), (3.0, 1.0), (-2.0, 0.5))]
    assert recalibrate_batchnorm(net, batches) == 1
    expected_mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    expected_var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected_mean)
    torch.testing.assert_close(bn.running_var, expected_var)
    assert bn.momentum == 0.1 and not net.training  # restored, eval mode


def test_dropout_is_off_while_the_statistics_are_gathered() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(1))
    x = torch.ones(4, 1, 8, 8)
    recalibrate_batchnorm(net, [x])
    # with dropout on, the input would be 0 or 2 and the variance about 1; off, it is exactly 0
    assert float(net[1].running_var[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(net[1].running_mean[0]) == pytest.approx(1.0)


def test_no_batchnorm_changes_nothing_and_no_batch_is_an_error() -> None:
    assert recalibrate_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 3)), []) == 0
    bn = nn.BatchNorm2d(1)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_batchnorm(nn.Sequential(bn), [])
    assert bn.momentum == 0.1
