# qarith: `make verilog` emits every block's Verilog; `make test` runs both test tiers.
# Every target bootstraps a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILD  := build
BLOCK  ?=
CONFIG ?=
CONFIG_FILE ?=
SET    ?=
SIM    ?= icarus
JOBS   ?= 2
SEEDS  ?= 1
ROUNDS ?= 1
BOARD  ?= icebreaker
PORT   ?= sim
FORMAL_TIMEOUT ?= 150
# A dask scheduler (tcp://HOST:8786) for make report, make sweep and make sweep-examples; default: a LocalCluster.
SCHEDULER ?=

.PHONY: all verilog test test-full test-fast test-random sim report bench accuracy formal sweep sweep-examples clean \
        simulators bitstream bitstreams program run

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

# The qarith command's config options: CONFIG=NAME, CONFIG_FILE=FILE.toml, SET="key=value key=value".
CONFIG_ARGS = $(if $(CONFIG),--config $(CONFIG)) $(if $(CONFIG_FILE),--config-file $(CONFIG_FILE)) \
              $(foreach setting,$(SET),--set $(setting))

# Every named config and manifest.json, or with BLOCK=... (and the config options) one config.
verilog: $(STAMP)
	$(BIN)/qarith verilog $(if $(BLOCK),$(BLOCK),--all) $(CONFIG_ARGS) -o $(BUILD)/verilog

# Any test may run on any worker: builds shared by two workers take turns (sim/common/runner.py:
# build_lock). pytest-xdist's --dist loadgroup does not group under pytest 9 (xdist 3.8 renames
# item._nodeid, which pytest 9 no longer reads), so nothing here relies on it.
test: $(STAMP) simulators
	$(BIN)/python -m pytest -n $(JOBS) -q

test-full: $(STAMP) simulators
	QARITH_FULL=1 QARITH_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest -n $(JOBS) -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q -m "not cocotb and not synthesis"

# make test with fresh random idle/backpressure seeds (QARITH_SEED=random), ROUNDS times; every failure
# prints the QARITH_SEED value that repeats it.
test-random: $(STAMP) simulators
	@for round in $$(seq $(ROUNDS)); do \
	  echo "test-random: round $$round of $(ROUNDS)"; \
	  QARITH_SEED=random $(BIN)/python -m pytest -n $(JOBS) -q || exit 1; \
	done

sim: $(STAMP) simulators
	$(BIN)/qarith sim $(or $(BLOCK),mac_array) $(CONFIG_ARGS) --sim $(SIM)

report: bench
	$(BIN)/qarith report -o $(BUILD)/report --seeds $(SEEDS) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

bench: $(STAMP) simulators
	$(BIN)/qarith bench -o $(BUILD)/report

# Whole models through the integer golden blocks (README "Integer-only models"), offline; ACCURACY_ARGS=--quick
# for the development subsets.
ACCURACY_ARGS ?=
accuracy: $(STAMP)
	$(BIN)/pip install --quiet -e '.[accuracy]'
	$(BIN)/python -m qarith.fpga.accuracy.models -o $(BUILD)/accuracy $(ACCURACY_ARGS)

# Board builds (README "On a board"): the shell around BLOCK/CONFIG for BOARD=icebreaker|ulx3s, into
# build/bitstream/$(BOARD)/; `make program` loads it; `make run PORT=/dev/ttyUSB1` plays the block's test
# vectors through it (PORT=sim, the default, simulates the board instead).
bitstream: $(STAMP)
	$(BIN)/qarith bitstream $(BLOCK) $(CONFIG_ARGS) --board $(BOARD) -o $(BUILD)/bitstream

program: $(STAMP)
	$(BIN)/qarith program $(BLOCK) $(CONFIG_ARGS) --board $(BOARD) -o $(BUILD)/bitstream

run: $(STAMP)
	$(BIN)/qarith run $(BLOCK) $(if $(CONFIG),--config $(CONFIG)) --port $(PORT)

# Every bitstream of the README's board table.
bitstreams: $(STAMP)
	$(BIN)/qarith bitstream mac_array --config int8_4x4_ice40 --board icebreaker -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream lns_mul --config w12_b5_x4 --board icebreaker -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream softmax_lut --config n16_log --board icebreaker -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream linear_int8 --config b4_o4_k64 --board ulx3s -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream shiftmax --config n64_pytorch --board ulx3s -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream ilayernorm --config c64 --board ulx3s -o $(BUILD)/bitstream
	$(BIN)/qarith bitstream wino_conv --config f2_c4_o1 --board ulx3s -o $(BUILD)/bitstream

# Every formal proof and its mutant (SymbiYosys + Yices, one solver run at a time): build/formal/formal.md
formal: $(STAMP)
	$(BIN)/qarith formal --all -o $(BUILD)/formal --timeout $(FORMAL_TIMEOUT)

# A design-space sweep on Dask: make sweep SPEC=sweeps/pwl_entries.toml [SCHEDULER=tcp://HOST:8786]
# [BEST="max_error<0.01" MINIMIZE=luts]; writes build/sweep/<spec name>/ (records cached in build/sweep/cache).
SPEC      ?=
BEST      ?=
MINIMIZE  ?=
sweep: $(STAMP)
	@test -n "$(SPEC)" || { echo "error: give SPEC=sweeps/NAME.toml (specs: $$(ls sweeps/*.toml | tr '\n' ' '))"; exit 2; }
	$(BIN)/qarith sweep $(SPEC) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) \
	  $(if $(BEST),--best "$(BEST)") $(if $(MINIMIZE),--minimize $(MINIMIZE))

# The example sweeps of sweeps/ and their Pareto plots copied to sweeps/plots/ (the README shows them).
sweep-examples: $(STAMP)
	@for spec in sweeps/*.toml; do $(BIN)/qarith sweep $$spec $(if $(SCHEDULER),--scheduler $(SCHEDULER)) || exit 1; \
	  name=$$(basename $$spec .toml); mkdir -p sweeps/plots; \
	  for png in $(BUILD)/sweep/$$name/pareto_*.png; do cp $$png sweeps/plots/$$name.$$(basename $$png); done; done

clean:
	rm -rf $(BUILD) .pytest_cache
