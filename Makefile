# One command to run the app, one to run every test. Both create .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test bench samples pretrained clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# The package itself is installed editable, so tests, bench/ and scripts/ import `multimodal` with
# no sys.path edits; --no-build-isolation builds it with the venv's setuptools (no download).
$(VENV)/.installed-dev: requirements-dev.txt pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests

# Benchmarks write their results into bench/*.md (vs plain Keras ~10 min; the quality run about an hour on 2 cores).
# bench/ and scripts/ run as modules from the repository root, so they import each other and the
# browser-test harness (tests.browser.harness) as packages, without sys.path edits.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.bench_vs_keras
	$(BIN)/python -m bench.bench_explain
	$(BIN)/python -m bench.bench_app_training
	$(BIN)/python -m bench.quality

samples: $(VENV)/.installed
	$(BIN)/python -m multimodal.data.samples

pretrained: $(VENV)/.installed
	$(BIN)/python -m scripts.train_sample_models

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
