# graft: `make run` (set up, get data, run the pipeline) and `make test`. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DVC_REMOTE ?= $(HOME)/.cache/graft/dvc-remote

# Telemetry and update checks off for every tool, before any of them starts: the one list is
# src/graft/environment.env, which graft itself reads too.
include src/graft/environment.env
export $(shell sed -n 's/^\([A-Z_]*\)=.*/\1/p' src/graft/environment.env)
export PATH := $(BIN):$(PATH)

.PHONY: run test install data browser repo flow serve summary lock clean-venv

run: install data repo ## set up, get the default data, run the whole pipeline, print the summary
	dvc repro
	@graft summary

test: install browser ## lint, then the whole test suite (unit, data, pipeline, consumer tiers)
	ruff check src tests flows bench
	pytest -n auto --dist loadfile --no-loadscope-reorder  # every core; a file's tests on one worker; longest first (conftest)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -c constraints.txt -e '.[pipeline,dev]'
	touch $@

data: ## Debian's dataset-fashion-mnist where apt-get works; else ingest falls back (and says so)
	@if [ -d $(FASHION_MNIST) ]; then echo "data: Fashion-MNIST found in $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
	    || echo "data: apt-get could not install dataset-fashion-mnist; ingest will try the Keras cache, then a download"; \
	else echo "data: $(FASHION_MNIST) missing and apt-get unavailable (not root?); ingest will try the Keras cache, then a download"; fi

browser: ## Debian's chromium and chromium-driver, where apt-get works: the HTML report's test renders it (else it skips)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "browser: apt-get could not install chromium; the report's browser test will skip"; \
	else echo "browser: chromium missing and apt-get unavailable (not root?); the report's browser test will skip"; fi

repo: install ## git + DVC repo with telemetry off and a default local remote
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || git init -q
	@git rev-parse --verify -q HEAD >/dev/null || { git add -A && git -c user.name=graft -c user.email=graft@localhost commit -qm "graft project"; }
	@[ -d .dvc ] || dvc init -q
	@dvc config core.analytics false && dvc config core.check_update false
	@dvc remote list | grep -q . || { mkdir -p $(DVC_REMOTE) && dvc remote add --local -d local $(DVC_REMOTE); }

flow: install data repo ## the same pipeline as a Prefect flow (temporary local server)
	python flows/pipeline.py

PREFECT_PORT ?= 4200
serve: install data repo ## a local Prefect server (loopback, SQLite) and the scheduled deployment
	@curl -sf http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null || { \
	  prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) > .prefect-server.log 2>&1 & \
	  for i in $$(seq 60); do curl -sf http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null && break; sleep 1; done; }
	@echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT) (server log: .prefect-server.log)"
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api python -m flows.serve

summary: install
	@graft summary

lock: ## re-pin every dependency after changing pyproject.toml
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^graft' > requirements.lock.new
	{ head -2 requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp && rm requirements.lock.new && mv requirements.lock.tmp requirements.lock

clean-venv:
	rm -rf $(VENV)
