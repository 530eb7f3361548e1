# eks504: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= sandbox/scenarios/s2-clb-nginx-keepalive-30s.yaml

.PHONY: demo test lint-code typecheck unit bench redis-server clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@echo "== eks504 check against the sandbox ($(SCENARIO))"
	@# Exit 1 means "the check found a problem", which is what the demo shows; 2 is an error.
	@$(BIN)/eks504 check --scenario $(SCENARIO); status=$$?; [ $$status -le 1 ]

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (apt-get)"; \
	    (apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1)); \
	  fi; }
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "make test needs redis-server: install it (e.g. 'apt-get install redis-server' or 'brew install redis')"; exit 1; }

lint-code: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	@LC_ALL=C awk 'length > 100 { print FILENAME ":" FNR ": line over 100 columns"; bad = 1 } END { exit bad }' \
	  $$(git ls-files '*.py' 2>/dev/null || find bot checks sandbox tests -name '*.py')

typecheck: $(STAMP)
	$(BIN)/mypy checks bot sandbox

unit: $(STAMP) redis-server
	$(BIN)/pytest

test: lint-code typecheck unit

bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
