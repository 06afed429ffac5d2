# flowengine — two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the bundled flow's scenarios against the built-in simulators
run: $(STAMP)
	$(BIN)/flowengine validate flows
	$(BIN)/flowengine simulate flows/two_party_conference.yaml --provider all

## test: lint, type-check and the whole test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check flowengine tests bench

typecheck: $(STAMP)
	$(BIN)/mypy flowengine

unit: $(STAMP)
	$(BIN)/pytest -q

## bench: speed and memory figures with their ratio to the baseline
bench: $(STAMP)
	$(BIN)/python -m bench

validate: $(STAMP)
	$(BIN)/flowengine validate flows

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
