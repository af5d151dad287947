# SAR Toolbox — setup, demo, tests, packaging and benchmarks.
# `make demo` and `make test` set everything up on a fresh Debian 12 machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
SYSTEM_PY   ?= python3
PIP         := $(PY) -m pip
GPU         ?=
ORT_REQ     := requirements/onnxruntime-$(if $(GPU),gpu,cpu).txt
STAMP       := $(VENV)/.installed-$(if $(GPU),gpu,cpu)
APT_PKGS    := qgis python3-qgis qgis-providers gdal-bin python3-venv
WHEELS      := $(wildcard /opt/wheels)
PIP_FLAGS   := --disable-pip-version-check $(if $(WHEELS),--find-links $(WHEELS))
PYTEST_ARGS ?=
# QGIS's embedded Python finds its stdlib through the first python3 on PATH.
QGIS_ENV    := PATH=/usr/bin:$$PATH QT_QPA_PLATFORM=offscreen

.PHONY: help setup system-packages demo test test-fast lint package wheel bench bench-compression bench-rate-points \
        bench-registration calibrate-registration bench-registration-default bench-anchors bench-codec-ceiling \
        bench-osdataset-check bench-keypoints-ceiling calibrate-keypoints bench-batch bench-codec-speed bench-keypoints bench-filter \
        bench-cancel bench-coregister-large validate-translation train-compression \
        train-compression-hyper train-compression-joint \
        train-registration train-keypoints bench-translation train-translation clean

help:
	@echo "make demo                 set up if needed, run the main job on the embedded example"
	@echo "make test                 set up if needed, run every test"
	@echo "make setup [GPU=1]        Debian packages (as root), .venv and pinned requirements"
	@echo "make lint                 ruff + mypy"
	@echo "make package              build dist/sar_toolbox_plugin.zip (installable QGIS plugin)"
	@echo "make wheel                build dist/sar_toolbox-<version>-py3-none-any.whl (pip: engine, batch runner, training)"
	@echo "make bench                tiled-pipeline throughput and peak memory -> docs/BENCHMARKS.md"
	@echo "make bench-compression    rate-distortion vs JPEG2000 / LERC -> docs/BENCHMARKS.md"
	@echo "make bench-rate-points    every codec rate point on the rate-choice validation set -> engine/codec/rate_points.json"
	@echo "make bench-codec-ceiling  codec PSNR with quantised vs continuous latents vs a linear DCT (diagnostic)"
	@echo "make bench-osdataset-check  residual of the OSdataset homography against its warped image (diagnostic)"
	@echo "make bench-keypoints-ceiling  where the dense keypoint stages end from the true transform (diagnostic)"
	@echo "make calibrate-keypoints  the optional RIFT optical-SAR keypoints (rift-v1) on their calibration split (no benchmark case)"
	@echo "make bench-registration   co-registration accuracy (with GeFolki/AROSICS anchors) -> docs/BENCHMARKS.md"
	@echo "make calibrate-registration  refusal threshold of co-registration from a calibration split -> engine/registration/shift/refusal_calibration.json"
	@echo "make bench-registration-default  evidence for co-registration's default method -> docs/BENCHMARKS.md"
	@echo "make train-compression    retrain the three shipped codec rate points (CPU, about 75 minutes)"
	@echo "make train-compression-hyper  hyperprior entropy models h1..h4 on the shipped transforms"
	@echo "make train-compression-joint  sarcodec-h5: h1 fine-tuned jointly (transform + hyperprior)"
	@echo "make train-registration   retrain the shipped registration model regembed-guided-v3 (CPU, about 60 minutes)"
	@echo "make train-keypoints      retrain the shipped keypoint model kp-hscp-r2d2-v1 (one CPU thread, about 1 hour)"
	@echo "make bench-translation    SAR-to-optical translation scores vs trivial renderings -> docs/BENCHMARKS.md"
	@echo "make train-translation    retrain the shipped translation model sar2opt-colourise-v1 (CPU, one thread, minutes)"
	@echo "make validate-translation  a translation setting scored on the validation split of the training pairs"
	@echo "make bench-codec-speed    codec encode/decode seconds and peak RSS vs JPEG2000, 2048^2 and 16000 x 12000"
	@echo "make bench-filter         restoration filter: encode seconds and PSNR with / without it -> docs/BENCHMARKS.md"
	@echo "make bench-batch          scenes per minute of the Dask batch runner, 1 and 2 workers -> docs/BENCHMARKS.md"
	@echo "make bench-keypoints      keypoint registration (NCM, CMR, success) vs OpenCV SIFT/ORB -> docs/BENCHMARKS.md"
	@echo "make bench-cancel         progress and cancel latency of every algorithm on 2048 x 2048 -> docs/BENCHMARKS.md"
	@echo "make bench-coregister-large  coregister on 2048^2 and 10,000^2 pairs: time, peak memory, error -> docs/BENCHMARKS.md"
	@echo "make bench-anchors        the separate venv (bench_output/venv) with GeFolki and AROSICS"

setup: system-packages $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "Missing Debian packages:$$missing. Run as root:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(VENV)/bin/python:
	/usr/bin/python3 -m venv --system-site-packages $(VENV)

$(STAMP): $(VENV)/bin/python requirements/runtime.txt requirements/dev.txt requirements/batch.txt \
          requirements/train.txt $(ORT_REQ)
	$(PIP) install $(PIP_FLAGS) --upgrade "pip>=23"
	@if [ -n "$(GPU)" ]; then $(PIP) uninstall -y onnxruntime >/dev/null 2>&1 || true; \
	 else $(PIP) uninstall -y onnxruntime-gpu >/dev/null 2>&1 || true; fi
	$(PIP) install $(PIP_FLAGS) -r requirements/runtime.txt -r $(ORT_REQ) -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(QGIS_ENV) $(PY) -m scripts.demo --output demo_output

test: setup
	$(QGIS_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(QGIS_ENV) $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check engine training sar_toolbox_plugin tests scripts benchmarks
	$(PY) -m mypy

# The packager uses only the standard library: the system Python without site-packages (-S), no venv.
package:
	$(SYSTEM_PY) -S -m scripts.package --output dist/sar_toolbox_plugin.zip

# The pip-installable distribution (setup.py: one package, sar_toolbox; version from metadata.txt).
# --no-build-isolation: builds with the venv's setuptools, without fetching it from an index.
wheel: setup
	rm -rf build
	$(PIP) wheel $(PIP_FLAGS) --no-deps --no-build-isolation --wheel-dir dist .

bench: setup
	$(PY) -m benchmarks.pipeline --sizes 2000 8000 20000 --markdown docs/BENCHMARKS.md

bench-compression: setup
	$(PY) -m benchmarks.compression --data ../shared/data/real --markdown docs/BENCHMARKS.md

bench-codec-speed: setup
	$(PY) -m benchmarks.codec_speed --data ../shared/data/real --sizes 2048 16000x12000 --profile \
	    --markdown docs/BENCHMARKS.md

bench-rate-points: setup
	OMP_NUM_THREADS=1 $(PY) -m benchmarks.rate_points --data ../shared/data/real --json engine/codec/rate_points.json \
		--markdown docs/BENCHMARKS.md

bench-filter: setup
	$(PY) -m benchmarks.restoration_filter --data ../shared/data/real --markdown docs/BENCHMARKS.md

bench-cancel: setup
	OMP_NUM_THREADS=1 $(PY) -m benchmarks.cancel --size 2048 --markdown docs/BENCHMARKS.md

bench-coregister-large: setup
	OMP_NUM_THREADS=1 $(PY) -m benchmarks.coregistration_large --sizes 2048 10000 --markdown docs/BENCHMARKS.md

bench-batch: setup
	$(PY) -m benchmarks.batch --size 2048 --scenes 4 --workers 1 2 --markdown docs/BENCHMARKS.md

# Investigations (benchmarks/investigations/): diagnostics behind a decision or a benchmark figure.
bench-codec-ceiling: setup
	$(PY) -m benchmarks.investigations.codec_ceiling --data ../shared/data/real

bench-osdataset-check: setup
	$(PY) -m benchmarks.investigations.osdataset_check --data ../shared/data/real

bench-keypoints-ceiling: setup
	OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.investigations.keypoints_ceiling --data ../shared/data/real

# the RIFT optical-SAR keypoints' calibration split (no benchmark case): whole registration, RIFT fits alone, supported-answer rules
calibrate-keypoints: setup
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.investigations.rift_calibration --data ../shared/data/real
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.investigations.rift_calibration --data ../shared/data/real --keypoint-fits
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.investigations.rift_support --data ../shared/data/real \
	  --real 100 --synthetic 12 --json runs/rift-support.json

ANCHOR_VENV := bench_output/venv
$(ANCHOR_VENV)/.installed: requirements/bench-anchors.txt
	/usr/bin/python3 -m venv --system-site-packages $(ANCHOR_VENV)
	$(ANCHOR_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -r requirements/bench-anchors.txt
	touch $@

bench-anchors: $(ANCHOR_VENV)/.installed

# the refusal threshold of global co-registration, chosen on a calibration split (no benchmark case)
calibrate-registration: setup
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.calibrate_registration \
	  --data ../shared/data/real --real 400 --synthetic 200

bench-registration: setup bench-anchors
	$(PY) -m benchmarks.registration --data ../shared/data/real --markdown docs/BENCHMARKS.md

# KP_MODELS="--model models/kp-....onnx" adds a learned keypoint model to the comparison
bench-keypoints: setup
	OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.keypoints --data ../shared/data/real $(KP_MODELS) \
	  --markdown docs/BENCHMARKS.md --json runs/bench-keypoints.json

bench-registration-default: setup
	$(PY) -m benchmarks.registration.default --data ../shared/data/real --seed 0 --shifts 2 --markdown docs/BENCHMARKS.md

# Reproduces the shipped codec models (docs/TRAINING.md): three variant-D runs from scratch, one per
# rate point (about 25 minutes each on one CPU core; the shipped ones ran side by side, --threads 1).
TRAIN := OMP_WAIT_POLICY=PASSIVE $(PY) -m training.compression
CODEC_D := --variant D --latent-channels 256 --prior-lr-scale 10 --steps 7000 --seed 4 --threads 1
train-compression: setup
	$(TRAIN) train --run-dir runs/sarcodec-d-r1 $(CODEC_D) --lambda 60 --dct-step 0.3
	$(TRAIN) train --run-dir runs/sarcodec-d-r2 $(CODEC_D) --lambda 200 --dct-step 0.18
	$(TRAIN) train --run-dir runs/sarcodec-d-r3 $(CODEC_D) --lambda 600 --dct-step 0.1
	for r in r1 r2 r3; do \
	  $(TRAIN) export runs/sarcodec-d-$$r/checkpoint.pt --out-dir models --model-id sarcodec-$$r --no-card && \
	  $(TRAIN) evaluate runs/sarcodec-d-$$r/checkpoint.pt --onnx-encoder models/sarcodec-$$r-encoder.onnx \
	      --json runs/sarcodec-d-$$r-scores.json && \
	  $(TRAIN) export runs/sarcodec-d-$$r/checkpoint.pt --out-dir models --model-id sarcodec-$$r \
	      --scores runs/sarcodec-d-$$r-scores.json && \
	  $(TRAIN) classify models/sarcodec-$$r-encoder.onnx --json runs/sarcodec-d-$$r-classify.json || exit 1; \
	done

# Hyperprior entropy models on the shipped transforms (docs/TRAINING.md, "Hyperprior entropy model"):
# latent caches of the three encoders (2-3 minutes each), four rate-only trainings on one core each,
# export with held-out bits against the shipped tables and the model cards.
HYPER := --steps 1000 --batch 8 --holdout 64 --seed 0 --threads 1 --no-progress
train-compression-hyper: setup
	for r in r1 r2 r3; do \
	  $(TRAIN) hyper cache models/sarcodec-$$r-encoder.onnx --out runs/hyper/latents-$$r.npz --crops 3072 \
	      --seed 4 --no-progress || exit 1; \
	done
	$(TRAIN) hyper train --latents runs/hyper/latents-r1.npz --run-dir runs/hyper/h1 --latent-step 1.6 $(HYPER)
	$(TRAIN) hyper train --latents runs/hyper/latents-r1.npz --run-dir runs/hyper/h2 --latent-step 1 $(HYPER)
	$(TRAIN) hyper train --latents runs/hyper/latents-r2.npz --run-dir runs/hyper/h3 --latent-step 1 $(HYPER)
	$(TRAIN) hyper train --latents runs/hyper/latents-r3.npz --run-dir runs/hyper/h4 --latent-step 0.7 $(HYPER)
	$(TRAIN) hyper export runs/hyper/h1 --transform models/sarcodec-r1-encoder.onnx --model-id sarcodec-h1
	# h2 and h3 (the r1 and r2 steps) are the like-for-like comparison with the classified tables; not shipped
	$(TRAIN) hyper export runs/hyper/h2 --transform models/sarcodec-r1-encoder.onnx --model-id sarcodec-h2 \
	    --out-dir runs/hyper/compare
	$(TRAIN) hyper export runs/hyper/h3 --transform models/sarcodec-r2-encoder.onnx --model-id sarcodec-h3 \
	    --out-dir runs/hyper/compare
	$(TRAIN) hyper export runs/hyper/h4 --transform models/sarcodec-r3-encoder.onnx --model-id sarcodec-h4

# Reproduces sarcodec-h5 (models/sarcodec-h5.md): h1's transform and hyperprior fine-tuned jointly from its
# ONNX files (6,000 steps, about 70 minutes on one shared CPU core), compared with h1, exported.
train-compression-joint: setup
	$(TRAIN) train --warm-start models/sarcodec-h1-encoder.onnx --run-dir runs/joint/h1-l32 --steps 6000 \
	    --batch 2 --crop 256 --lambda 32 --lr 1e-4 --lr-final 1e-5 --threads 1 --eval-every 250 --log-every 50 \
	    --ckpt-every 250 --no-progress --seed 0
	$(TRAIN) hyper compare runs/joint/h1-l32/checkpoint.pt --shipped models/sarcodec-h1-encoder.onnx \
	    --shipped-steps 1.2 1.3 1.4 1.5 1.6 1.7 1.8 2.0 --json runs/joint/h1-l32/compare-final.json
	$(TRAIN) hyper export-joint runs/joint/h1-l32/checkpoint.pt --model-id sarcodec-h5 \
	    --compare-json runs/joint/h1-l32/compare-final.json

# Reproduces the shipped registration model (models/regembed-guided-v3.md): stage 1 from scratch (about
# 42 minutes on one CPU core), stage 2 from stage 1 with sub-pixel positives (about 17 minutes), export
# with the engine's embedding smoothing, then the card's two held-out protocols (JSON under runs/).
TRAIN_REG := OMP_WAIT_POLICY=PASSIVE $(PY) -m training.registration
REG_GUIDED := --arch guided --embed-dim 16 --widths 16 24 --blocks 2 --batch 8 --crop 96 --nce-radius 16 \
              --temperature 0.01 --threads 1 --ckpt-every 100
train-registration: setup
	$(TRAIN_REG) train --run-dir runs/regguided-c $(REG_GUIDED) --steps 1500 --lr 1e-3 --max-minutes 55 --seed 0
	$(TRAIN_REG) train --run-dir runs/regguided-g $(REG_GUIDED) --steps 600 --lr 3e-4 --lr-final 3e-5 \
	    --max-minutes 40 --seed 1 --init-from runs/regguided-c/checkpoint.pt --subpixel 0.5 --w-subpixel 1.0
	$(TRAIN_REG) export runs/regguided-g/checkpoint.pt --out-dir models --model-id regembed-guided-v3 \
	    --match-sigma 0.75
	$(TRAIN_REG) evaluate engine-deep:models/regembed-guided-v3.onnx classical gradmag --shifts-per-pair 20 \
	    --synthetic 40 --window 64 --search 32 --max-shift 24 --json runs/regembed-guided-v3-local.json
	$(TRAIN_REG) evaluate engine-deep:models/regembed-guided-v3.onnx classical --shifts-per-pair 10 \
	    --synthetic 20 --search 40 --max-shift 32 --json runs/regembed-guided-v3-global.json

# Reproduces the shipped keypoint model (models/kp-hscp-r2d2-v1.md): one CPU thread, seed 0.
KP_TRAIN := OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m training.keypoints
train-keypoints: setup
	$(KP_TRAIN) train --run-dir runs/kp-hscp-r2d2-v1 --steps 850 --batch 2 --lr 1.5e-3 --seed 0 --no-resume
	$(KP_TRAIN) export runs/kp-hscp-r2d2-v1 --out-dir models --model-id kp-hscp-r2d2-v1
	$(KP_TRAIN) evaluate models/kp-hscp-r2d2-v1.onnx sift --json runs/kp-hscp-r2d2-v1-scores.json

# SAR-to-optical translation (issue 28): the shipped model (models/sar2opt-colourise-v1.md) and its benchmark.
# A colouriser (luminance from the SAR, colour at 1/8 resolution), L1 only; its recipe (gain floor 0.25,
# 300 steps) was chosen on a validation split of the training pairs (docs/decisions/2026-12-07-translation-colourise.md).
TRANSLATION_ARGS = --arch colourise --ngf 32 --l1-weight 100 --gan-weight 0 --detail-gain-floor 0.25 \
  --batch 4 --crop 256 --seed 0 --threads 1 --real-root ../shared/data/real
bench-translation: setup
	$(PY) -m benchmarks.translation --data ../shared/data/real --markdown docs/BENCHMARKS.md

train-translation: setup
	OMP_NUM_THREADS=1 $(PY) -m training.translation train --run-dir runs/sar2opt-colourise-v1 $(TRANSLATION_ARGS) \
	  --steps 300 --no-resume
	$(PY) -m training.translation export runs/sar2opt-colourise-v1 --out-dir models --model-id sar2opt-colourise-v1

# The validation runs behind the recipe: 7 training pairs, scored on 3 more (python -m
# benchmarks.investigations.translation_validation); VAL_ARGS picks the setting, e.g. VAL_ARGS="--steps 300".
VAL_HELD_OUT = SEN_water_9 SEN_rural_8 SEN_city_8 SEN_plain_9 GF3_water_5 SEN_city_6 SEN_rural_7 SEN_water_6
validate-translation: setup
	OMP_NUM_THREADS=1 $(PY) -m training.translation train --run-dir runs/val/translation $(TRANSLATION_ARGS) \
	  --held-out $(VAL_HELD_OUT) --steps 300 --no-resume $(VAL_ARGS)
	$(PY) -m training.translation export runs/val/translation --out-dir runs/val/models --model-id val-translation
	$(PY) -m benchmarks.investigations.translation_validation runs/val/models/val-translation.onnx

clean:
	rm -rf build dist demo_output .pytest_cache .mypy_cache .ruff_cache *.egg-info
