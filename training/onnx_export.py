"""A PyTorch module written as a checked ONNX model: one export call and one atomic, parity-checked write.

Every exporter of the trainers goes through :func:`export_onnx` (the project's export settings)
and :func:`write_checked` (temporary file beside the target, metadata attached, ONNX Runtime
against PyTorch compared, then moved into place; a failure leaves nothing behind).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from engine.metadata import ModelMetadata, Task

from .onnx_io import OPSET, attach_metadata

#: Largest ONNX-vs-PyTorch difference accepted by :func:`write_checked`.
PARITY_TOLERANCE = 1e-4


class ParityError(ValueError):
    """The exported model's outputs differ from PyTorch's by more than :data:`PARITY_TOLERANCE`
    (nothing was written; the command line reports it as a bad input)."""


def export_onnx(
    module: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> None:
    """``torch.onnx.export`` with the project's settings (opset, constant folding, the legacy exporter)."""
    with warnings.catch_warnings():  # the legacy exporter's deprecation/constant-folding notices
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def write_checked(
    path: Path,
    export: Callable[[Path], None],
    meta: ModelMetadata,
    parity: Callable[[Path], float] | None,
) -> float:
    """Write ``path`` with ``export`` and ``meta``; returns the parity error (NaN when ``parity`` is None).

    ``export`` writes the ONNX file it is given (a temporary file beside ``path``); ``parity``
    measures its largest difference to PyTorch, which must be at most :data:`PARITY_TOLERANCE`.
    """
    tmp = path.with_name(f".{path.name}.tmp.onnx")
    try:
        export(tmp)
        attach_metadata(tmp, meta)
        diff = parity(tmp) if parity is not None else float("nan")
        if parity is not None and not diff <= PARITY_TOLERANCE:
            raise ParityError(
                f"ONNX/PyTorch parity of {path.name} failed: max abs diff {diff:.2e} > "
                f"{PARITY_TOLERANCE:.0e}."
            )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return diff


@torch.no_grad()
def max_abs_difference(module: torch.nn.Module, path: Path, task: Task, x: np.ndarray) -> float:
    """Largest difference between ONNX Runtime (engine ``OnnxModel``, CPU) running the ``task`` model at
    ``path`` and PyTorch running ``module`` (in eval mode) on ``x``; the shapes must agree."""
    from engine.runtime import OnnxModel

    module.eval()
    ref = module(torch.from_numpy(x)).numpy()
    got = OnnxModel(path, providers=["CPUExecutionProvider"], tasks=[task]).run(x)
    if got.shape != ref.shape:
        raise AssertionError(f"ONNX output shape {got.shape} differs from PyTorch {ref.shape}.")
    return float(np.max(np.abs(got - ref)))
