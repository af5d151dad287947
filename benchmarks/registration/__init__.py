"""Co-registration benchmarks: :mod:`.shifted` (real and synthetic shifted pairs against the AROSICS /
GeFolki anchors, ``python -m benchmarks.registration``), :mod:`.anchors` (the anchors, run in their own
venv), :mod:`.default` (the default method's cases) and :mod:`.refusal` (refusing rather than guessing)."""
