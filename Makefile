# flowengine — two commands do all set-up: `make run` and `make test`.
# Both install exactly the versions in requirements.lock (hashes checked), then the project itself.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
UV     := uv==0.13.9
MUTMUT := mutmut==3.8.1
# `make lock` resolves for every Python the project supports (3.11+), not just the one running it.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --extra test --quiet

# Which installed distributions differ from the lock: what `make test-latest` is really testing.
define LOCK_DRIFT
import re, sys, importlib.metadata as md
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = dict((norm(n), v) for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", open(sys.argv[1]).read(), re.M))
drift = sorted(f"{d.metadata['Name']} {locked[norm(d.metadata['Name'])]} -> {d.version}" for d in md.distributions()
               if locked.get(norm(d.metadata['Name']), d.version) != d.version)
print("differs from the lock:", ", ".join(drift) or "nothing (the lock holds the newest releases)")
endef
export LOCK_DRIFT

# setuptools explains every editable install in a box of asterisks ("InformationOnly: Editable
# installation", a Python warning from the build backend), which some pip versions pass through even
# with --quiet. This filter silences that one message, by its text, and nothing else.
EDITABLE_QUIET := PYTHONWARNINGS='ignore:Editable installation'

.PHONY: run test lint typecheck unit bench bench-quick chaos fuzz validate lock test-latest mutation clean

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(EDITABLE_QUIET) $(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
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

## bench: speed and memory figures with their ratio to the baseline (a few minutes; make bench-quick: ~1-2 min,
## rougher). One benchmark: make bench BENCH_ARGS=wholecall
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

## chaos: crash, two-instance and platform-fault runs of 50 concurrent calls with real processes (bounded,
## ~10-15 min, not part of test); prints a table of figures. More: make chaos CHAOS_ARGS="--calls 200 --only redis"
chaos: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m chaos $(CHAOS_ARGS)

## fuzz: schemathesis' every phase against each provider's served /openapi.json (~2-5 min, not part of
## test); prints requests sent and answers by status class, fails on any 5xx. More: make fuzz FUZZ_ARGS="--examples 1000"
fuzz: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m apifuzz $(FUZZ_ARGS)

validate: $(STAMP)
	$(BIN)/flowengine validate flows

## mutation: mutation testing of the core modules this wave touched (mutmut; not part of CI)
mutation:
	test -x .venv-mutation/bin/mutmut || { $(PYTHON) -m venv .venv-mutation \
	  && .venv-mutation/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK) \
	  && .venv-mutation/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
	  && .venv-mutation/bin/pip install --quiet --disable-pip-version-check '$(MUTMUT)'; }
	rm -rf mutants
	.venv-mutation/bin/mutmut run --max-children 2
	.venv-mutation/bin/python tests/mutants_at_import.py
	.venv-mutation/bin/mutmut results

## lock: re-resolve requirements.lock from pyproject's ranges (newest allowed releases), with hashes
lock:
	test -x .venv-lock/bin/uv || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet '$(UV)'; }
	printf 'setuptools>=77  # the build backend, for --no-build-isolation\n' \
	  | .venv-lock/bin/uv pip compile pyproject.toml - $(LOCK_FLAGS) --upgrade -o $(LOCK)
	@echo "$(LOCK) regenerated: review 'git diff $(LOCK)', run 'make test', commit both."

## test-latest: the whole suite on the newest releases pyproject's ranges allow (not CI: a canary)
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[test]'
	@.venv-latest/bin/python -c "$$LOCK_DRIFT" $(LOCK)
	.venv-latest/bin/ruff check flowengine tests bench
	.venv-latest/bin/mypy flowengine
	.venv-latest/bin/pytest -q -p no:cacheprovider
	rm -rf .venv-latest

clean:
	rm -rf $(VENV) .venv-latest .venv-lock .venv-mutation mutants .mypy_cache .pytest_cache .ruff_cache
