# Two commands do all the setup on a fresh machine:
#   make demo   set up, generate a synthetic landing zone, run register_load on SQLite, print a summary
#   make test   set up and run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := data/demo
export DAGSTER_HOME := $(CURDIR)

.PHONY: setup demo test bench clean-demo

# Two distributions, both editable: the register (.) and the synthetic-data generator
# (generator/: register-synth, the demo's and the tests' landing zones).
$(BIN)/.installed: pyproject.toml generator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" -e ./generator
	touch $@

setup: $(BIN)/.installed

demo: setup
	@test -d $(DEMO_DIR)/landing || $(BIN)/register-synth --out $(DEMO_DIR) --people 2000 --days 7 --seed 1
	REGISTER_LANDING_DIR=$(CURDIR)/$(DEMO_DIR)/landing \
		$(BIN)/dagster job execute -m pipeline.orchestration.definitions -j register_load
	$(BIN)/register summary

test: setup
	$(BIN)/python -m pytest

clean-demo:
	rm -rf $(DEMO_DIR) data/register.db data/register.db-wal data/register.db-shm data/dagster
