# Two entry points that work on a fresh machine (Python 3.10+ with venv):
#   make serve   set up .venv with digitrec[serve] (no torch) and run the web app on the bundled model
#   make check   set up .venv with every extra, then lint, the import contracts and the fast tiers (tests/unit,
#                tests/api: no server, no browser, no MNIST; a few minutes): what to run between edits
#   make test    set up .venv with every extra and run the whole test suite, tests/e2e included (what CI runs)
#   make image   build the serving image digitrec:latest (docker when a Docker engine runs, else podman)
#   make image-test  build it, run it and smoke-test it from outside (what CI runs after `make test`)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
# torch is pinned exactly first: a bare range would let pip pick a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: serve check test image image-test setup-serve setup-dev lint bundle bundle-gate frontier sweep bench clean

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

# Lint, then the import contracts of pyproject.toml ([tool.importlinter]: the serving half imports neither
# training, the CLI nor torch; nothing imports the CLI or digitrec.testing), then the fast tiers.
check: setup-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests/unit tests/api -q

test: setup-dev
	$(PY) -m pytest

# The image (.ci/build-image: podman needs a base made once from Debian, see docs/production.md). The smoke test
# draws its digit with digitrec.training.synth, so it runs with the serve venv's Python.
IMAGE ?= digitrec:latest
image:
	IMAGE=$(IMAGE) .ci/build-image

image-test: setup-serve
	IMAGE=$(IMAGE) PYTHON=$(abspath $(PY)) .ci/image-test

lint: setup-dev
	$(VENV)/bin/ruff check src tests benchmarks

# Reproduce the bundled model: the student recipe (the fast CNN at width 16, 20 epochs, seed 0), the most accurate
# model on validation among those that keep POST /api/predict within 3x /healthz (README, Results). The training
# command writes the model card (calibration included); the shipped files are those of runs/student-alone.
# Then the "is this a digit?" gate (digitrec.training.gate, docs/no-digit.md): gate.onnx beside the model, listed
# in its card with its sha256, the threshold fitted on the validation split and the vouch fitted on non-digits it
# never saw. The bundled gate was trained at commit $(GATE_COMMIT), whose to_mnist made its training pictures: run
# on today's preprocessing the same command gives a weaker gate (docs/no-digit.md), so it runs from that commit.
GATE_COMMIT := 465a645
bundle: setup-dev
	$(VENV)/bin/digitrec train --preset student --seed 0 --out runs/bundled
	cp runs/bundled/model.onnx runs/bundled/model_card.json src/digitrec/bundled/
	$(MAKE) bundle-gate

bundle-gate: setup-dev
	rm -rf runs/gate-source && git worktree prune && git worktree add --detach runs/gate-source $(GATE_COMMIT)
	cd runs/gate-source && PYTHONPATH=src $(abspath $(PY)) -m digitrec.training.gate \
		--model $(CURDIR)/src/digitrec/bundled --out $(CURDIR)/runs/gate --seed 0 --install
	git worktree remove --force runs/gate-source

# The frontier runs of the README: five best-recipe members and their ensemble, the same without label
# smoothing, five students, the mixed ensemble validation chooses (benchmarks/ensembles.py), the distilled
# student, the reference recipe, the small transformer and int8 (about 3 h on 2 cores, one after the other).
frontier: setup-dev
	$(VENV)/bin/digitrec train --preset best --ensemble 5 --out runs/best
	$(VENV)/bin/digitrec train --preset best --label-smoothing 0 --ensemble 5 --out runs/best-ls0
	$(VENV)/bin/digitrec train --preset student --ensemble 5 --out runs/students
	$(PY) benchmarks/ensembles.py best=runs/best best-ls0=runs/best-ls0 students=runs/students
	$(VENV)/bin/digitrec ensemble runs/best-ls0 runs/students --out runs/mix
	$(VENV)/bin/digitrec train --preset student --teacher runs/best --out runs/student
	$(VENV)/bin/digitrec train --preset student --out runs/student-alone
	$(VENV)/bin/digitrec train --preset reference --out runs/reference-seed0
	$(VENV)/bin/digitrec train --preset vit --out runs/vit
	$(VENV)/bin/digitrec export runs/best/members/seed-0 --int8

# The GPU seed sweep of the README: three heavier variants of best, five seeds each, ten runs at a time on one
# CUDA device (on an H200 the first ten took 5-6 minutes, time-sharing it; on 2 CPU cores, hours). Run it again
# to resume what a deadline stopped; add --summary-only for the table alone.
sweep: setup-dev
	$(PY) benchmarks/sweep.py --candidates w64e30 w64e40-aug w48e40-aug --seeds 5 --jobs 10 --device cuda

bench: setup-dev
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
