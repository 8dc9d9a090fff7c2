# Media Lab — one entry point for installing, running, testing and operating.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast chaos lint audit migrate bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[sandbox,test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with the sandbox and test tools

run: install ## install, migrate and start bot + worker + web (emulators when no tokens)
	$(BIN)/python -m sandbox

# The tests mostly wait (on Telegram's and YooKassa's stand-ins, RQ, timeouts), so more test
# processes than cores pay off: each has its own database and Redis (tests/conftest.py); the
# chaos scenarios share one stack, on one of them (--dist loadgroup). PYTEST_WORKERS=0: one.
PYTEST_WORKERS ?= 4
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadgroup)

# Both tiers are CPU-bound on 2 cores: their times are printed beside this machine's speed
# at the start (scripts/cpu-reference, seconds of a fixed pure-Python work; lower is faster).
# pytest keeps the test modules' assertion-rewritten bytecode (and the project's) in
# __pycache__: with PYTHONDONTWRITEBYTECODE set (as in the Docker image, and in some shells)
# every test process rewrote and compiled ~440 modules again, ~3 s of CPU each.
unexport PYTHONDONTWRITEBYTECODE

test: install ## the whole test suite (PostgreSQL and Redis must answer; installs chromium if missing)
	scripts/ensure-chromium
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	@ref=$$(scripts/cpu-reference); start=$$(date +%s); $(BIN)/python -m pytest -q $(XDIST); \
	status=$$?; echo "make test: $$(( $$(date +%s) - start )) s (CPU reference $$ref s)"; exit $$status

test-fast: install ## the fast tier: in-process handlers and jobs, no process start-ups (<90 s)
	@ref=$$(scripts/cpu-reference); start=$$(date +%s); \
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow and not chaos and not browser"; \
	status=$$?; echo "make test-fast: $$(( $$(date +%s) - start )) s (CPU reference $$ref s)"; exit $$status

chaos: install ## the long fault-injection scenarios (the short ones run in make test)
	$(BIN)/python -m pytest -q -m chaos tests/chaos

lint: install ## ruff (lint and format) and the import layers (import-linter contracts)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

audit: install ## check every balance against the ledger (DATABASE_URL)
	$(BIN)/python -m billing audit

migrate: install
	$(BIN)/alembic upgrade head

bench: install
	$(BIN)/python bench/charge.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/bot_memory.py
	$(BIN)/python bench/internals.py
	$(BIN)/python bench/update_order.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .sandbox
