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

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests

# Benchmarks write their results into bench/*.md (vs plain Keras ~10 min; the quality run about an hour on 2 cores).
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_vs_keras.py
	$(BIN)/python bench/bench_explain.py
	$(BIN)/python bench/bench_app_training.py
	$(BIN)/python bench/quality.py

samples: $(VENV)/.installed
	$(BIN)/python -m multimodal.samples

pretrained: $(VENV)/.installed
	$(BIN)/python scripts/train_sample_models.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
