# Xiuhua: the README's commands. Each target installs what it needs on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 300

.PHONY: help bootstrap venv check fmt test test-unit test-integration fuzz demo bench services clean

help: ## Show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

bootstrap: ## Install the Debian packages the servers come from (apt-get, as root)
	@bash scripts/bootstrap.sh

# A .venv that exists but cannot install (made without python3-venv, so without pip; or whose
# python no longer runs, after an upgrade) is removed and made again instead of failing.
VENV_BROKEN := $(shell test -e $(VENV) && ! $(BIN)/python -c "import pip" >/dev/null 2>&1 && echo yes)

$(STAMP): pyproject.toml $(if $(VENV_BROKEN),venv-rebuild)
	@bash scripts/bootstrap.sh --python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "$(PYTHON) -m venv failed: install python3-venv (make bootstrap)" >&2; exit 1; }
	@echo "Installing Xiuhua and its development tools into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } \
		> $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

.PHONY: venv-rebuild
venv-rebuild:
	@echo "$(VENV) is incomplete or broken (no pip, or its python does not run): making it again"
	@rm -rf $(VENV)

venv: $(STAMP) ## Create .venv and install Xiuhua with its development tools

check: venv ## Lint, format check, strict typing and import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mqtt_fastpath telemetry_core firmware_sim edge_agent cloud_ingest alerting dashboards xiuhua tests bench
	$(BIN)/lint-imports

fmt: venv ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: bootstrap check ## Run every test (unit, integration against real servers, end to end)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv ## Run the fast unit tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: bootstrap venv ## Run the tests against real Mosquitto and InfluxDB
	$(BIN)/pytest tests/integration tests/e2e $(PYTEST_ARGS)

fuzz: venv ## Fuzz the ingest path and the edge command handler (FUZZ_SECONDS per target, default 300)
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS) --work .fuzz

demo: bootstrap venv ## Start the servers, the ingester and the alerting service; watch readings land and alerts rise
	$(BIN)/xiuhua demo

bench: bootstrap venv ## Run the benchmarks and print their figures
	$(BIN)/xiuhua bench

services: bootstrap venv ## Start Mosquitto, InfluxDB and VictoriaMetrics and print their URLs
	$(BIN)/xiuhua services up

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
