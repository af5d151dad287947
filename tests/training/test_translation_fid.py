"""FID: the project's Inception-v3 (random weights: nothing is downloaded), loading, and the FID pipeline.

The Frechet distance itself is checked against known Gaussians in test_translation_metrics.py;
here :func:`evaluate.fid` is checked end to end with a small random feature network (the
2048-D Inception features of a handful of images would make the covariance singular and the
test slow), and the Inception network on one image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.translation import metrics
from training.translation.evaluate import fid
from training.translation.inception import InceptionV3Features, features, load_inception


@pytest.mark.slow
def test_random_inception_loads_and_gives_2048_pool_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "inception.pt"
    state = InceptionV3Features().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)  # classifier keys are ignored
    torch.save(state, path)
    net = load_inception(path)
    image = torch.from_numpy(np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32))
    f = features(net, image)
    assert f.shape == (1, 2048) and torch.isfinite(f).all() and (f >= 0).all()  # ReLU, then average pool


def test_fid_pipeline_with_a_random_feature_network() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 6)
    ).eval()
    rng = np.random.default_rng(1)
    real = [rng.random((3, 16, 16)).astype(np.float32) for _ in range(40)]
    other = [np.clip(r * 0.5 + 0.3, 0, 1).astype(np.float32) for r in real]
    assert fid(net, real, real) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        fr = net(torch.from_numpy(np.stack(real))).double().numpy()
        fo = net(torch.from_numpy(np.stack(other))).double().numpy()
    assert fid(net, real, other) == pytest.approx(metrics.fid_from_features(fr, fo), rel=1e-5)
    assert fid(net, real, other) > 1e-3


def test_wrong_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not an Inception-v3 state dict"):
        load_inception(path)
    with pytest.raises(FileNotFoundError):
        load_inception(tmp_path / "missing.pt")
