"""Rate-distortion benchmark of the learned SAR codec against GDAL JPEG2000 and LERC
(``python -m benchmarks.compression``, :mod:`.__main__`): :mod:`.rows` (images, rows, codec runs),
:mod:`.baselines` (JPEG2000, LERC), :mod:`.checks` (seams, determinism, memory, speed) and
:mod:`.report` (Markdown section, plot)."""
