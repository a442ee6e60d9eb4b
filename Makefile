# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run setup test test-unit test-unit-ahead test-integration test-e2e system-deps lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## make run: install, migrate, create the demo merchant, start web + worker + beat (Ctrl-C stops all).
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Open http://$${WEB_HOST:-127.0.0.1}:$${WEB_PORT:-8000}/ and sign in with a user above and its current code."
	@echo ""
	$(BIN)/honcho start -f Procfile

## make test: every lane; fails if a lane cannot run.
test: system-deps $(VENV)/.installed lint test-unit test-unit-ahead test-integration test-e2e

system-deps:
	@bash scripts/system-deps.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

test-unit: $(VENV)/.installed
	$(BIN)/pytest tests --ignore=tests/integration --ignore=tests/e2e

## The unit lane again with the whole process's clock years ahead (faketime): the suite holds no date a
## calendar can overtake. scripts/clock_ahead.py prints the moments (a leap day and a year end) and why.
test-unit-ahead: $(VENV)/.installed
	@$(BIN)/python scripts/clock_ahead.py | while read -r moment; do \
	  echo "Unit lane with the clock at $$moment"; \
	  faketime "$$moment" $(BIN)/pytest -q -p no:cacheprovider tests --ignore=tests/integration --ignore=tests/e2e \
	    || exit 1; \
	done

test-integration: $(VENV)/.installed
	$(BIN)/python -m tests.integration.services $(BIN)/pytest tests/integration

test-e2e: $(VENV)/.installed
	$(BIN)/pytest tests/e2e

## make bench: the benchmarks of DESIGN "Performance targets" beside a throwaway PostgreSQL and Redis (the
## integration harness); prints a table, writes var/bench/results.json. BENCH_SCALE=full: the targets' scale.
bench: $(VENV)/.installed
	$(BIN)/python -m tests.integration.services $(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache
