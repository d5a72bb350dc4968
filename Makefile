# make demo: set everything up, train configs/demo.yaml on data/, generate text.
# make test: set everything up with the test extras and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick configs docs docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lstm-textgen train --config configs/demo.yaml
	$(BIN)/lstm-textgen generate --run runs/demo --seed "ROMEO:" -n 80 --random-seed 7
	$(BIN)/lstm-textgen generate --run runs/demo --seed "the king" -n 80 --random-seed 11

# -n: one pytest worker per core (at most 4): TensorFlow's graph building is single-threaded
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4

test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q

# configs/default.yaml is written from the settings' declarations (lstm_textgen/config/); a test checks it is current
configs: $(STAMP)
	$(BIN)/python -m lstm_textgen.config.reference > configs/default.yaml

# make docs: the docs site (mkdocs.yml, docs/) built strictly into site/; the reference pages are written from the
# code at build time (docs/hooks.py). It needs the docs extra; without it, one line says how to install it.
docs: | $(BIN)/python
	@$(BIN)/python docs/check_extra.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

docs-serve: | $(BIN)/python
	@$(BIN)/python docs/check_extra.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs serve

clean:
	rm -rf $(VENV) runs site
