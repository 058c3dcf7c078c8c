# The two commands a newcomer needs: `make run` and `make test`.
# Each (re)creates .venv and installs what it needs; nothing else is required first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Extras to install; CI adds `local` so the GGUF model test runs there too.
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.onward-installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: run test lint typecheck unit bench chaos clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "onward needs Python 3.11+"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

run: $(STAMP)
	$(BIN)/onward up

lint: $(STAMP)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/pyright

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/onward bench

chaos: $(STAMP)
	$(BIN)/onward chaos --conversations 10 --kills 5 --seed 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
