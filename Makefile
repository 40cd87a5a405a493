# suit-controller: `make demo` and `make test` are the whole quick start.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PACKAGES := channels workouts suit_controller sim benchmarks

.PHONY: demo test bench lint typecheck c-test pytest system-deps clean mutation

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m suit_controller sim run builtin:classic_strength --clients 4 --virtual --out out/demo

test: lint typecheck c-test pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict $(PACKAGES)

# the suit firmware in C (firmware/): sanitized test binaries, then the library Python loads
c-test: system-deps
	@if command -v $(CC) >/dev/null 2>&1; then $(MAKE) -C firmware test; \
	else echo "c-test: skipped: no C compiler ($(CC)); scripts/system-deps.sh installs gcc as root"; fi

pytest: $(STAMP) system-deps
	$(VENV)/bin/pytest

system-deps:
	bash scripts/system-deps.sh

bench: $(STAMP)
	$(PY) -m benchmarks

# Mutation testing of the safety code (scripts/mutation.py, docs/mutation.md); not in `make test`.
# `make mutation TARGETS=channels/limits.py` runs one module.
MUTATION_STAMP := $(VENV)/.mutation-stamp
$(MUTATION_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,mutation]'
	touch $@

mutation: $(MUTATION_STAMP)
	$(PY) scripts/mutation.py $(TARGETS)

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache .hypothesis firmware/build
