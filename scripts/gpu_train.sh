#!/usr/bin/env bash
# GPU training run, for a machine with one NVIDIA GPU and about 8 minutes: trains the codec (sarcodec-h5's
# transform and hyperprior jointly, warm-started from its ONNX files), the keypoint model and the
# translation model for a fixed wall time each, exports each to ONNX with the parity check against
# PyTorch, evaluates each against the shipped model on the held-out protocols of their model cards, and
# writes everything under one folder OUT (default gpu_train_output/):
#   environment.json               python, torch, CUDA device, data folder, budgets
#   models/*.onnx, models/*.md     the new models and their cards
#   <family>/                      run folder (checkpoint, TensorBoard), logs, evaluation JSON
#   summary.json, summary.md       per family: status, steps, seconds, new vs shipped scores, "beats_shipped"
# Shipping stays a decision: copy a model and its card into models/ only where summary says it beats the
# shipped one (and rerun the benchmarks).
#
# Usage: scripts/gpu_train.sh [OUT]
# Environment (all optional):
#   PY              the Python to use (default: .venv/bin/python if it imports torch, else python3)
#   DATA            real-data folder (default ../shared/data/real; without it: synthetic data only)
#   MINUTES_CODEC, MINUTES_KEYPOINTS, MINUTES_TRANSLATION   training wall time each (2, 1.5, 1.5)
#   WHEELS          a folder of wheels installed (offline, --no-index) into OUT/site for modules the
#                   Python lacks (rasterio, constriction, ...: the engine's runtime requirements). For a
#                   machine with CUDA torch, onnx and scipy but not these (Python 3.12), fetch them where
#                   PyPI is reachable with: pip download --no-deps --only-binary=:all: --python-version 3.12
#                   --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d wheels rasterio affine
#                   cligj click-plugins constriction pytorch-msssim
#   ALLOW_CPU=1     run without a CUDA device (otherwise the script stops before training)
#   SMOKE=1         a few steps each on tiny data (the CPU test in tests/test_gpu_train_script.py)
# No onnxruntime-gpu is needed: training runs in PyTorch, exports are checked on onnxruntime's CPU provider.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-gpu_train_output}")
mkdir -p "$OUT/models"
DATA=${DATA:-../shared/data/real}
SMOKE=${SMOKE:-0}
export PYTHONUNBUFFERED=1 SAR_TOOLBOX_PROVIDERS=CPUExecutionProvider

if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python
  else PY=python3; fi
fi

# --- the modules every step needs (training.console's [train] list and the engine's runtime imports);
# missing ones from WHEELS, else stop now rather than after minutes
RUNTIME_MODULES="onnxruntime numpy scipy skimage rasterio constriction affine PIL"
missing() { $PY - $RUNTIME_MODULES <<'PYEOF'
import importlib.util, sys
from training.console import TRAINING_MODULES
print(" ".join(m for m in (*TRAINING_MODULES, *sys.argv[1:]) if importlib.util.find_spec(m) is None))
PYEOF
}
MISSING=$(missing)
if [ -n "$MISSING" ] && [ -n "${WHEELS:-}" ]; then
  echo "== installing $MISSING from $WHEELS (offline)"
  $PY -m pip install -q --no-index --no-deps --find-links "$WHEELS" --target "$OUT/site" "$WHEELS"/*.whl
  export PYTHONPATH="$OUT/site${PYTHONPATH:+:$PYTHONPATH}"
  MISSING=$(missing)
fi
if [ -n "$MISSING" ]; then
  echo "error: $PY lacks the Python modules: $MISSING. Run 'make setup GPU=1', set PY to a Python that has" \
       "them, or give WHEELS=<folder of wheels> for an offline machine." >&2
  exit 2
fi

# --- device, data and budgets
if [ ! -d "$DATA/opt_sar_3mos" ] || [ "$SMOKE" = 1 ]; then DATA="$OUT/no-real-data"; fi
if [ "$SMOKE" = 1 ]; then
  M_CODEC=${MINUTES_CODEC:-0.5} M_KP=${MINUTES_KEYPOINTS:-0.5} M_TR=${MINUTES_TRANSLATION:-0.5}
else
  M_CODEC=${MINUTES_CODEC:-2} M_KP=${MINUTES_KEYPOINTS:-1.5} M_TR=${MINUTES_TRANSLATION:-1.5}
fi
$PY - "$OUT/environment.json" "$DATA" "$M_CODEC" "$M_KP" "$M_TR" "$SMOKE" <<'PYEOF'
import json, os, platform, sys
import torch
out, data, *budgets, smoke = sys.argv[1:]
cuda = torch.cuda.is_available()
env = {"python": sys.executable, "python_version": platform.python_version(), "torch": torch.__version__,
       "cuda_available": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
       "torch_cuda": torch.version.cuda, "real_data": data if os.path.isdir(os.path.join(data, "opt_sar_3mos")) else None,
       "minutes": dict(zip(("codec", "keypoints", "translation"), map(float, budgets))), "smoke": smoke == "1"}
json.dump(env, open(out, "w"), indent=2)
print(json.dumps(env))
PYEOF
if [ "$SMOKE" != 1 ] && [ "${ALLOW_CPU:-0}" != 1 ] && \
   ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: torch ($PY) sees no CUDA device: install a CUDA build of torch (make setup GPU=1) or set" \
       "ALLOW_CPU=1 to train on the CPU anyway." >&2
  exit 2
fi
THREADS=$($PY -c "import os; print(max(1, min(8, (os.cpu_count() or 2) - 1)))")
if [ "$SMOKE" = 1 ]; then
  STEPS=3; THREADS=1
  CODEC_DATA=(--no-real --synthetic-scenes 2 --synthetic-size 128 --batch 1 --crop 64)
  CODEC_EVAL=(--synthetic 1 --shipped-steps 1.5 1.7)
  KP_DATA=(--no-real --synthetic-scenes 2 --synthetic-size 128 --batch 1 --crop 64)
  KP_EVAL=(--synthetic 1 --warps-per-pair 1 --max-keypoints 64)
  TR_DATA=(--no-3mos --synthetic-pairs 2 --synthetic-size 128 --batch 1 --crop 64)
  TR_EVAL=(--synthetic 1 --train-synthetic 2)
  SHRINK=(--colour-shrinkage 1)
else
  STEPS=0
  if [ -d "$DATA/opt_sar_3mos" ]; then REAL=(--real-root "$DATA"); NO3MOS=(); else REAL=(--no-real); NO3MOS=(--no-3mos); fi
  CODEC_DATA=("${REAL[@]}" --batch 8 --crop 256)
  CODEC_EVAL=(--shipped-steps 1.2 1.3 1.4 1.5 1.6 1.7 1.8 2.0)
  KP_DATA=("${REAL[@]}" --batch 8)
  KP_EVAL=()
  TR_DATA=(--real-root "$DATA" "${NO3MOS[@]}" --batch 8 --crop 256)
  TR_EVAL=()
  # the shipped model's colour shrinkage pulls towards the 3MOS training colour: only with 3MOS
  SHRINK=(--colour-shrinkage 1)  # the model's own colours (issue 28)
fi
steps() { if [ "$STEPS" = 0 ]; then echo "$1"; else echo "$STEPS"; fi; }
# the steps a run folder's checkpoint reached, into OUT/<family>/steps.txt
record_steps() {
  $PY -c "import sys, torch; print(int(torch.load(sys.argv[1], map_location='cpu', weights_only=True)['step']))" \
      "$1/checkpoint.pt" > "$OUT/$2/steps.txt"
}

# one family: its commands in order (the first failure ends it), output in <family>/log.txt; a failure is
# recorded and the other families still run. The function runs as a background job so that errexit holds
# inside it (bash ignores it in a function called as an 'if' condition).
family() {
  local name=$1 status; shift
  mkdir -p "$OUT/$name"
  echo "== $name"
  local start=$SECONDS
  "$@" > "$OUT/$name/log.txt" 2>&1 &
  if wait $!; then status=ok; else status=failed; tail -20 "$OUT/$name/log.txt"; fi
  echo "{\"status\": \"$status\", \"seconds\": $((SECONDS - start))}" > "$OUT/$name/status.json"
  echo "   $status in $((SECONDS - start)) s"
}

codec() {
  local run=$OUT/codec/run
  $PY -m training.compression train --warm-start models/sarcodec-h5-encoder.onnx --run-dir "$run" \
      --steps "$(steps 6000)" --max-minutes "$M_CODEC" --lambda 32 --lr 1e-4 --lr-final 1e-5 \
      --threads "$THREADS" --eval-every 0 --log-every 25 --ckpt-every 500 --no-progress --no-resume --seed 0 \
      "${CODEC_DATA[@]}"
  record_steps "$run" codec
  $PY -m training.compression hyper compare "$run/checkpoint.pt" --shipped models/sarcodec-h5-encoder.onnx \
      --real-root "$DATA" "${CODEC_EVAL[@]}" --json "$OUT/codec/compare.json"
  $PY -m training.compression hyper export-joint "$run/checkpoint.pt" --model-id sarcodec-gpu \
      --out-dir "$OUT/models" --compare-json "$OUT/codec/compare.json" \
      --command "scripts/gpu_train.sh (training.compression train --warm-start models/sarcodec-h5-encoder.onnx)"
}

keypoints() {
  local run=$OUT/keypoints/run
  $PY -m training.keypoints train --run-dir "$run" --steps "$(steps 850)" --max-minutes "$M_KP" \
      --lr 1.5e-3 --seed 0 --threads "$THREADS" --log-every 25 --ckpt-every 200 --no-progress --no-resume \
      "${KP_DATA[@]}"
  record_steps "$run" keypoints
  $PY -m training.keypoints export "$run" --out-dir "$OUT/models" --model-id kp-gpu
  $PY -m training.keypoints evaluate "$OUT/models/kp-gpu.onnx" models/kp-hscp-r2d2-v1.onnx \
      --real-root "$DATA" "${KP_EVAL[@]}" --json "$OUT/keypoints/evaluate.json"
}

translation() {
  local run=$OUT/translation/run
  $PY -m training.translation train --run-dir "$run" --steps "$(steps 300)" --max-minutes "$M_TR" \
      --arch colourise --ngf 32 --l1-weight 100 --gan-weight 0 --detail-gain-floor 0.25 --seed 0 --threads "$THREADS" --log-every 25 --ckpt-every 200 --no-progress --no-resume \
      "${TR_DATA[@]}"
  record_steps "$run" translation
  $PY -m training.translation export "$run" --out-dir "$OUT/models" --model-id sar2opt-gpu "${SHRINK[@]}"
  $PY -m training.translation evaluate "$OUT/models/sar2opt-gpu.onnx" models/sar2opt-colourise-v1.onnx \
      --real-root "$DATA" "${TR_EVAL[@]}" --json "$OUT/translation/evaluate.json"
}

family codec codec
family keypoints keypoints
family translation translation
$PY -m scripts.gpu_train_summary "$OUT"
echo "== results in $OUT"
