# One command to run the app, one to run every test. Both create .venv from the pinned requirements.
PYTHON ?= python3
# GPU=1 (`make run GPU=1`, `make test GPU=1`): a venv of its own, .venv-gpu, with TensorFlow's CUDA
# build (requirements-gpu.txt) in place of tensorflow-cpu; the default CPU set-up is unchanged.
ifeq ($(GPU),1)
VENV := .venv-gpu
RUNTIME := requirements-gpu.txt
# requirements-dev.txt without its `-r requirements.txt` line, which would bring tensorflow-cpu back
DEV_INSTALL = grep -v '^-r ' requirements-dev.txt > $(VENV)/dev-tools.txt && $(BIN)/pip install --quiet -r $(VENV)/dev-tools.txt
else
VENV := .venv
RUNTIME := requirements.txt
DEV_INSTALL = $(BIN)/pip install --quiet -r requirements-dev.txt
endif
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test bench samples pretrained clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(RUNTIME) $(BIN)/python
	$(BIN)/pip install --quiet -r $(RUNTIME)
	touch $@

# The package itself is installed editable, so tests, bench/ and scripts/ import `multimodal` with
# no sys.path edits; --no-build-isolation builds it with the venv's setuptools (no download).
$(VENV)/.installed-dev: requirements-dev.txt pyproject.toml $(VENV)/.installed
	$(DEV_INSTALL)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 3 --durations=25 tests

# Benchmarks write their results into bench/*.md (vs plain Keras ~10 min; the quality runs about 3 hours on 2 cores).
# bench/ and scripts/ run as modules from the repository root, so they import each other and the
# browser-test harness (tests.browser.harness) as packages, without sys.path edits.
# requirements-bench.txt: xprof, the TensorFlow profiler's reader (bench/profile_step.py), without
# its web-server dependencies (--no-deps): only its converter is used.
bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet --no-deps -r requirements-bench.txt
	$(BIN)/python -m bench.profile_step
	$(BIN)/python -m bench.bench_vs_keras
	$(BIN)/python -m bench.bench_explain
	$(BIN)/python -m bench.bench_app_training
	$(BIN)/python -m bench.quality_real
	$(BIN)/python -m bench.quality_real --datasets skin_lesions,house_prices,growth_sequences --image-size 32 \
		--fusions early_concat --report quality
	$(BIN)/python -m bench.bench_wide

samples: $(VENV)/.installed
	$(BIN)/python -m multimodal.data.samples

pretrained: $(VENV)/.installed
	$(BIN)/python -m scripts.train_sample_models

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
