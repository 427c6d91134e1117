# videogen: `make run` generates a video on the embedded stack; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck pytest run serve bench simulator docs clean

install: $(STAMP)

# Re-installs only when a pinned file changes, so a second `make install` is quick.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "videogen needs Python 3.11 to 3.13, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy functions local tests benchmarks

pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

run: install
	$(BIN)/videogen generate "A paper kite drifting above a wheat field on a windy afternoon" --model veo3-fast --out output/kite.mp4

serve: install
	$(BIN)/videogen serve --port 8080

bench: install
	$(BIN)/python benchmarks/store_streaming.py
	$(BIN)/python benchmarks/polling.py

docs: install
	$(BIN)/python -m local.docs_gen

simulator: install
	$(BIN)/videogen simulator --port 8765

clean:
	rm -rf $(VENV) output .mypy_cache .ruff_cache .pytest_cache
