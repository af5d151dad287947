"""Quality of a reconstructed SAR image: the metrics (:mod:`.metrics`), their streamed form over strips
of rows (:mod:`.strips`) and the HTML report (:mod:`.report`).

Entry point: :func:`assess` (two files in, a :class:`QualityReport` and optionally the HTML page out).
"""

from __future__ import annotations

from .metrics import assess
from .report import QualityReport, Sizes

__all__ = ["QualityReport", "Sizes", "assess"]
