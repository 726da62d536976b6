# Two entry points that work on a fresh machine (Python 3.10+ with venv):
#   make serve   set up .venv with digitrec[serve] (no torch) and run the web app on the bundled model
#   make test    set up .venv with every extra and run the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
# torch is pinned exactly first: a bare range would let pip pick a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: serve test setup-serve setup-dev lint bundle bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.serve-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[serve]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet '$(TORCH)'
	$(PIP) install --quiet -e '.[train,serve,dev]'
	touch $@ $(VENV)/.serve-installed

setup-serve: $(VENV)/.serve-installed
setup-dev: $(VENV)/.dev-installed

serve: setup-serve
	$(VENV)/bin/digitrec serve --host $(HOST) --port $(PORT)

test: setup-dev
	$(PY) -m pytest

lint: setup-dev
	$(VENV)/bin/ruff check src tests benchmarks

# Reproduce the bundled model: the fast recipe run twice as long (20 epochs), then its ONNX file and model card.
bundle: setup-dev
	$(VENV)/bin/digitrec train --preset fast --epochs 20 --seed 0 --out runs/bundled
	cp runs/bundled/model.onnx runs/bundled/model_card.json src/digitrec/bundled/
	$(VENV)/bin/digitrec calibrate src/digitrec/bundled

bench: setup-dev
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
