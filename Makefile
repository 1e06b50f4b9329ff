# Two commands: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-car test lint typecheck unit bench vss clean contracts roads

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole system: fleet cloud + console, embedded MQTT broker, 8 hubs driving Helsinki's streets.
demo: $(STAMP)
	$(BIN)/anycar demo --fleet

# One car's hub reporting over the embedded broker (what `make demo` ran before the fleet demo).
demo-car: $(STAMP)
	$(BIN)/anycar demo --uplink

lint: $(STAMP)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools

typecheck: $(STAMP)
	$(BIN)/mypy

# bandit over src/: clean, or each exception justified in place (`# nosec BXXX # why`).
.PHONY: security
security: $(STAMP)
	$(BIN)/bandit -q -r src

# The import contracts in pyproject.toml: the wire imports no room, hub and fleet meet only there.
contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck security contracts unit

bench: $(STAMP)
	$(BIN)/anycar bench broker

# Recompile the shipped VSS catalog from ../shared/vss with vss-tools (needs ../shared beside the repo).
vss: $(STAMP)
	$(BIN)/python tools/compile_vss.py ../shared/vss

# Rebuild the shipped road network and street base map from ../shared/osm with pyosmium.
roads: $(STAMP)
	$(BIN)/python tools/build_roads.py ../shared/osm/helsinki_centre.osm.pbf

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
