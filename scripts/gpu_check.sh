#!/usr/bin/env bash
# GPU check, for a maintainer with an NVIDIA GPU: one command on a fresh Debian 12 machine, about
# 5-8 minutes. Installs the GPU requirements, runs the engine tests with the CUDA execution provider
# forced, then the pipeline, codec and registration benchmarks on GPU and CPU side by side, and writes
# every result as a file under OUT (default gpu_check_output/):
#   nvidia-smi.txt, onnxruntime.txt, engine-tests-cuda.xml/.log, pipeline-{cuda,cpu}.json,
#   codec-{cuda,cpu}.json, registration-{cuda,cpu}.md, summary.md
# Usage: scripts/gpu_check.sh [OUT]        (as root for the Debian packages, or with them installed)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-gpu_check_output}")
mkdir -p "$OUT"
PY=.venv/bin/python
CUDA=CUDAExecutionProvider
CPU=CPUExecutionProvider
export PATH=/usr/bin:$PATH QT_QPA_PLATFORM=offscreen

echo "== setup (GPU=1)"
make setup GPU=1 > "$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
$PY -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())" > "$OUT/onnxruntime.txt"
cat "$OUT/onnxruntime.txt"

echo "== the engine really runs on CUDA (no silent CPU fallback)"
SAR_TOOLBOX_PROVIDERS=$CUDA $PY - <<'PYEOF'
from engine.codec.models import bundled_codec
from engine.runtime import OnnxModel
model = OnnxModel(bundled_codec("r2")[0])
assert model.provider == "CUDAExecutionProvider", f"runs on {model.provider}, not CUDA"
print("ok:", model)
PYEOF

echo "== engine tests with CUDA forced"
SAR_TOOLBOX_PROVIDERS=$CUDA,$CPU timeout 300 $PY -m pytest tests/engine -q -m "not slow" -p no:cacheprovider \
    --junitxml "$OUT/engine-tests-cuda.xml" > "$OUT/engine-tests-cuda.log" 2>&1 || true
tail -3 "$OUT/engine-tests-cuda.log"

for name in cuda cpu; do
  provider=$([ $name = cuda ] && echo $CUDA || echo $CPU)
  echo "== benchmarks on $provider"
  SAR_TOOLBOX_PROVIDERS=$provider $PY -m benchmarks.pipeline --sizes 2000 8000 --json "$OUT/pipeline-$name.json" \
      > "$OUT/pipeline-$name.log" 2>&1
  SAR_TOOLBOX_PROVIDERS=$provider $PY -m benchmarks.codec_speed --size 4096 --json "$OUT/codec-$name.json" \
      > "$OUT/codec-$name.log" 2>&1
  SAR_TOOLBOX_PROVIDERS=$provider $PY -m benchmarks.registration --only synthetic --synthetic 5 \
      --methods deep classical --anchor-python none --markdown "$OUT/registration-$name.md" \
      > "$OUT/registration-$name.log" 2>&1 || echo "registration benchmark failed on $name (see its log)"
done

$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name): return json.loads((out / name).read_text())
lines = ["# GPU check", "", (out / "onnxruntime.txt").read_text().strip(), ""]
pipe = {n: load(f"pipeline-{n}.json") for n in ("cuda", "cpu")}
lines += ["| pipeline scene | CUDA Mpix/s | CPU Mpix/s | ratio (target >= 20 at 8k) |", "|---|---:|---:|---:|"]
for g, c in zip(pipe["cuda"], pipe["cpu"]):
    lines.append(f"| {g['size']}^2 | {g['mpix_per_s']:.2f} | {c['mpix_per_s']:.2f} | {g['mpix_per_s'] / c['mpix_per_s']:.1f}x |")
codec = {n: load(f"codec-{n}.json")[0] for n in ("cuda", "cpu")}
lines += ["", "| codec 4096^2 r2 | CUDA Mpix/s | CPU Mpix/s | ratio (target >= 10) |", "|---|---:|---:|---:|"]
for k in ("encode_mpix_s", "decode_mpix_s"):
    lines.append(f"| {k.split('_')[0]} | {codec['cuda'][k]:.2f} | {codec['cpu'][k]:.2f} | {codec['cuda'][k] / codec['cpu'][k]:.1f}x |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "== results in $OUT"
