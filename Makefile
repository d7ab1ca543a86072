# qarith: `make verilog` emits every block's Verilog; `make test` runs both test tiers.
# Every target bootstraps a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILD  := build
BLOCK  ?= mac_array
CONFIG ?=
SIM    ?= icarus
JOBS   ?= 2
SEEDS  ?= 1
FORMAL_TIMEOUT ?= 150

.PHONY: all verilog test test-full test-fast sim report bench formal clean simulators

all: verilog

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: qarith needs Python 3.11 or newer as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

# Icarus Verilog (required) from Debian's packages when it is missing, and ccache (optional: it caches the
# C++ compiles of Verilator's builds, which every config repeats).
simulators:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	command -v iverilog >/dev/null 2>&1 || { \
	  echo "Icarus Verilog not found: installing Debian's iverilog package"; \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog; } >/dev/null || { \
	    echo "error: could not install Icarus Verilog. Install it yourself (Debian/Ubuntu:"; \
	    echo "  'sudo apt-get install iverilog') and run make again."; exit 1; }; }; \
	command -v ccache >/dev/null 2>&1 || { \
	  echo "ccache not found: installing Debian's ccache package (caches Verilator's C++ compiles)"; \
	  { $$SUDO apt-get install -y -qq ccache || { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq ccache; }; } >/dev/null 2>&1 || \
	  echo "note: could not install ccache; Verilator builds run uncached (slower, same results)"; }

verilog: $(STAMP)
	$(BIN)/qarith verilog --all -o $(BUILD)/verilog

test: $(STAMP) simulators
	$(BIN)/python -m pytest -n $(JOBS) -q

test-full: $(STAMP) simulators
	QARITH_FULL=1 $(BIN)/python -m pytest -n $(JOBS) -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q -m "not cocotb"

sim: $(STAMP) simulators
	$(BIN)/qarith sim $(BLOCK) $(if $(CONFIG),--config $(CONFIG)) --sim $(SIM)

report: bench
	$(BIN)/qarith report -o $(BUILD)/report --seeds $(SEEDS)

bench: $(STAMP) simulators
	$(BIN)/qarith bench -o $(BUILD)/report

# Every formal proof and its mutant (SymbiYosys + Yices, one solver run at a time): build/formal/formal.md
formal: $(STAMP)
	$(BIN)/qarith formal --all -o $(BUILD)/formal --timeout $(FORMAL_TIMEOUT)

clean:
	rm -rf $(BUILD) .pytest_cache
