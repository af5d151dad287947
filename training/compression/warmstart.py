"""PyTorch modules of a shipped codec, rebuilt from its ONNX files (to fine-tune them).

The torch checkpoints of the shipped models need not be on the machine; their ONNX files are.

* :func:`load_transform`: the encoder and decoder weights of a ``sarcodec-*`` ONNX pair into a
  :class:`~training.compression.models.SarCodec`'s encoder and decoder. Named initialisers load by name
  (the decoder's carry a ``decoder.`` prefix); the convolutions into which the exporter folded a
  BatchNorm (unnamed ``onnx::Conv_*`` initialisers, with a bias) load in graph order into the
  ``Conv2d -> BatchNorm2d`` pairs left, the BatchNorm set to the identity plus the folded bias (mean 0,
  variance ``1 - eps``, scale 1). Those BatchNorms must then stay in eval mode: batch statistics would
  undo the folding (:class:`~training.compression.hyper.model.HyperCodec` keeps them so).
* :func:`hyperprior_from_spec`: a :class:`~training.compression.hyper.model.HyperPrior` with the
  integer networks of ``extra["hyperprior"]`` as float weights (exact: the integers divided by their
  powers of two) and the factorised prior of ``z`` fitted to the stored ``z_table``
  (:func:`fit_z_prior`; the table is a discretisation, not the prior's parameters).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.codec.entropy import EntropyModelTable
from engine.codec.intnet import IntNet

from .entropy import FactorizedPrior
from .hyper.model import HyperCodec, HyperConfig, HyperPrior, MirrorNet
from .hyper.tables import HYPERPRIOR_KEY
from .models import ModelConfig, SarCodec

logger = logging.getLogger(__name__)


def _initialisers(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """(initialiser arrays by name, weight names of the Conv/ConvTranspose nodes in graph order)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    return arrays, conv_weights


def _folded_pairs(module: nn.Module, named: set[str]) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """``Conv2d -> BatchNorm2d`` pairs (registration order) whose weights are not among ``named``."""
    pairs = []
    for seq_name, seq in module.named_modules():
        children = list(seq.named_children())
        for (name, conv), (_, bn) in itertools.pairwise(children):
            full = f"{seq_name}.{name}.weight".lstrip(".")
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and full not in named:
                pairs.append((conv, bn))
    return pairs


def _load_part(module: nn.Module, path: Path, prefix: str) -> None:
    """Load one ONNX graph's initialisers into ``module`` (see the module docstring)."""
    arrays, conv_weights = _initialisers(path)
    state = module.state_dict()
    named: set[str] = set()
    with torch.no_grad():
        for name, arr in arrays.items():
            key = name.removeprefix(prefix)
            if key in state:
                if tuple(state[key].shape) != arr.shape:
                    raise ValueError(f"{path.name}: '{name}' has shape {list(arr.shape)}, the network "
                                     f"expects {list(state[key].shape)}; the model configuration does not "
                                     "match.")
                state[key].copy_(torch.from_numpy(np.array(arr)))
                named.add(key)
        folded = [w for w in conv_weights if w.removeprefix(prefix) not in state]
        pairs = _folded_pairs(module, named)
        if len(folded) != len(pairs):
            raise ValueError(f"{path.name} holds {len(folded)} folded convolutions, the network "
                             f"{len(pairs)}; the model configuration does not match.")
        for wname, (conv, bn) in zip(folded, pairs, strict=True):
            w = arrays[wname]
            if tuple(conv.weight.shape) != w.shape:
                raise ValueError(f"{path.name}: folded convolution {wname} has shape {list(w.shape)}, the "
                                 f"network expects {list(conv.weight.shape)}.")
            bias = _bias_of(arrays, wname, path)
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(bias))
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)


def _bias_of(arrays: dict[str, np.ndarray], weight_name: str, path: Path) -> np.ndarray:
    """The bias initialiser exported right after a folded weight (``onnx::Conv_<n + 1>``)."""
    stem, _, num = weight_name.rpartition("_")
    name = f"{stem}_{int(num) + 1}"
    if name not in arrays:
        raise ValueError(f"{path.name}: no bias '{name}' for the folded convolution {weight_name}.")
    return np.array(arrays[name], dtype=np.float32)


def decoder_path(encoder: Path) -> Path:
    """``<id>-decoder.onnx`` beside ``<id>-encoder.onnx``."""
    if not encoder.name.endswith("-encoder.onnx"):
        raise ValueError(f"'{encoder}' is not a codec encoder file (<model id>-encoder.onnx).")
    return encoder.with_name(encoder.name.replace("-encoder.onnx", "-decoder.onnx"))


def model_config_of(meta: Any, encoder: Path) -> ModelConfig:
    """The transform's architecture: variant and latent channels from the codec metadata, hidden widths
    from the decoder's upsampling layers (``decoder.net.<i>.0.weight``, ``[in, out, 4, 4]``)."""
    arrays, _ = _initialisers(decoder_path(encoder))
    ups = sorted((int(k.split(".")[2]), v.shape[1]) for k, v in arrays.items()
                 if k.startswith("decoder.net.") and k.endswith(".0.weight") and v.ndim == 4)
    widths = tuple(int(w) for _, w in ups)
    if len(widths) != 3:
        raise ValueError(f"'{decoder_path(encoder)}' is not a codec decoder of this project (found "
                         f"{len(widths)} upsampling layers, expected 3).")
    return ModelConfig(variant=str(meta.extra.get("architecture", "D")),
                       widths=(widths[2], widths[1], widths[0]), latent_channels=int(meta.latent_channels))


def load_transform(codec: SarCodec | HyperCodec, encoder: Path) -> None:
    """Encoder and decoder weights of the ONNX pair ``encoder`` / :func:`decoder_path` into ``codec``."""
    _load_part(codec.encoder, encoder, "")
    _load_part(codec.decoder, decoder_path(encoder), "decoder.")
    logger.info("loaded the transform of %s", encoder.name)


def _load_mirror(net: MirrorNet, spec: dict[str, Any]) -> None:
    intnet = IntNet.from_dict(spec)
    convs = net.convs()
    if len(convs) != len(intnet.layers):
        raise ValueError(f"the stored network has {len(intnet.layers)} layers, the model {len(convs)}.")
    with torch.no_grad():
        for conv, layer in zip(convs, intnet.layers, strict=True):
            w = layer.weight.astype(np.float64) / 2.0**intnet.weight_bits
            b = layer.bias.astype(np.float64) / 2.0 ** (intnet.weight_bits + intnet.frac_bits)
            if tuple(conv.weight.shape) != w.shape:
                raise ValueError(f"stored layer {list(w.shape)} does not match the model's "
                                 f"{list(conv.weight.shape)}.")
            conv.weight.copy_(torch.from_numpy(w))
            assert conv.bias is not None
            conv.bias.copy_(torch.from_numpy(b))


def hyper_config_of(spec: dict[str, Any]) -> HyperConfig:
    """The :class:`HyperConfig` of an ``extra["hyperprior"]`` dict (widths read from its layers)."""
    shapes = [[layer["shape"] for layer in spec[k]["layers"]] for k in ("analysis", "synthesis")]
    ctx = spec["context"][0]["layers"][0]["shape"][0] if spec["context"] else 64
    st = spec["scale_table"]
    return HyperConfig(
        channels=int(shapes[0][0][1]), z_channels=int(shapes[0][-1][0]), analysis_width=int(shapes[0][0][0]),
        synthesis_widths=(int(shapes[1][0][0]), int(shapes[1][1][0])), context_width=int(ctx),
        slices=tuple(int(s) for s in spec["slices"]), latent_step=float(spec["latent_step"]),
        log2_min=float(st["log2_min"]),
        log2_max=float(st["log2_min"] + (int(st["count"]) - 1.5) * float(st["log2_step"])))


def fit_z_prior(prior: FactorizedPrior, table: EntropyModelTable, steps: int = 300,
                lr: float = 0.02) -> float:
    """Fit ``prior`` to the discretised pmfs of ``table`` (cross-entropy, Adam); the final bits per symbol
    above the table's own entropy (mean over channels)."""
    length = max(len(p) for p in table.pmfs)
    c = len(table.pmfs)
    values = torch.zeros(1, c, 1, length)
    weights = torch.zeros(1, c, 1, length, dtype=torch.float64)
    for k, (m, off, pmf) in enumerate(zip(table.medians, table.offsets, table.pmfs, strict=True)):
        p = np.asarray(pmf, dtype=np.float64)
        values[0, k, 0, :] = torch.arange(length, dtype=torch.float32) + off + m
        weights[0, k, 0, : p.size] = torch.from_numpy(p / p.sum())
    opt = torch.optim.Adam(prior.parameters(), lr=lr)
    w = weights.float()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.sum(w * -torch.log2(prior.likelihood(values))) / c
        loss.backward()
        opt.step()
    entropy = float(torch.sum(weights * -torch.log2(torch.clamp(weights, min=1e-300)))) / c
    return float(loss.detach()) - entropy


def hyperprior_from_spec(spec: dict[str, Any]) -> HyperPrior:
    """A trainable :class:`HyperPrior` equal to the stored integer networks (``extra["hyperprior"]``)."""
    model = HyperPrior(hyper_config_of(spec))
    _load_mirror(model.analysis, spec["analysis"])
    _load_mirror(model.synthesis, spec["synthesis"])
    nets = model.context_nets()
    if len(nets) != len(spec["context"]):
        raise ValueError(f"the stored hyperprior has {len(spec['context'])} context networks, "
                         f"the model {len(nets)}.")
    for net, cspec in zip(nets, spec["context"], strict=True):
        _load_mirror(net, cspec)
    excess = fit_z_prior(model.z_prior, EntropyModelTable.from_json(spec["z_table"]))
    logger.info("z prior fitted to the stored table: %.4f bits per symbol above its entropy", excess)
    return model


def shipped_hyperprior(encoder: Path) -> tuple[Any, dict[str, Any]]:
    """The metadata of a shipped hyperprior model's encoder and its ``extra["hyperprior"]`` dict; a
    :class:`ValueError` for a model without one."""
    import json

    from engine.codec.models import load_encoder

    meta = load_encoder(encoder).metadata
    if HYPERPRIOR_KEY not in meta.extra:
        raise ValueError(f"'{encoder}' has no hyperprior entropy model; give a sarcodec-hN encoder "
                         "(models/sarcodec-h1-encoder.onnx).")
    return meta, json.loads(meta.extra[HYPERPRIOR_KEY])


def warm_start(codec: HyperCodec, encoder: Path) -> None:
    """``codec`` (transform + hyperprior) set to the shipped hyperprior model ``encoder`` (its ONNX pair)."""
    _, spec = shipped_hyperprior(encoder)
    if hyper_config_of(spec) != codec.prior.cfg:
        raise ValueError(f"the hyperprior of '{encoder}' ({hyper_config_of(spec)}) is not the model's "
                         f"({codec.prior.cfg}); take the configuration from the file (--warm-start).")
    load_transform(codec, encoder)
    codec.prior.load_state_dict(hyperprior_from_spec(spec).state_dict())
