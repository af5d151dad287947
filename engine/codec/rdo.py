"""Rate-distortion optimised quantisation of latents (encoder side only).

Rounding every latent to the nearest integer minimises the distortion but not
the cost the codec was trained for, ``bits + lambda * squared error``. For each
non-zero symbol the encoder also tries the neighbour one step towards zero and
keeps it when

    delta_bits + rdo_lambda * w_c * delta(e^2) < 0,

where ``e`` is the latent's quantisation error, ``w_c`` the squared error (in
normalised pixel units, summed over the pixels) that one step of channel ``c``
causes after the decoder, and ``delta_bits`` the code-length change under the
cell's class. ``w_c`` and ``rdo_lambda`` come with the model's entropy table
(``distortion_weights``, ``rdo_lambda``; fitted by ``training.compression
classify``). The decoder is unaffected: it decodes whatever integers it reads.
"""

from __future__ import annotations

import numpy as np

from .entropy import EntropyModelTable


def rdo_quantise(table: EntropyModelTable, y: np.ndarray) -> np.ndarray:
    """Integer latents ``[C, h, w]`` (int32) for continuous latents ``y``, rate-distortion optimised.

    Falls back to plain rounding (:meth:`EntropyModelTable.quantise`) when the table has no
    ``rdo_lambda``.
    """
    q = table.quantise(y)
    if table.rdo_lambda <= 0:
        return q
    centred = y.astype(np.float64) - table.medians_array().astype(np.float64)[:, None, None]
    cells = table.assign_classes(q).reshape(q.shape[1:]) if table.classes else None
    for c, weight in enumerate(table.distortion_weights):
        qc = q[c]
        nonzero = qc != 0
        if not nonzero.any():
            continue
        toward_zero = qc - np.sign(qc).astype(np.int32)
        delta_bits = table.symbol_bits(c, toward_zero, cells) - table.symbol_bits(c, qc, cells)
        delta_error = (centred[c] - toward_zero) ** 2 - (centred[c] - qc) ** 2
        move = nonzero & (delta_bits + table.rdo_lambda * weight * delta_error < 0)
        q[c] = np.where(move, toward_zero, qc)
    return q
