# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint soak bench clean

$(STAMP): pyproject.toml setup.py ledger/_speedups.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tpledger needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tpledger demo
	@echo
	@echo "tpledger is installed in $(VENV), not on your PATH. Next:"
	@echo "  source $(VENV)/bin/activate     # then: tpledger --help, the README's walkthrough"
	@echo "  (or call $(BIN)/tpledger directly)"

lint: $(STAMP)
	$(BIN)/ruff check ledger consensus node cli tests bench deploy tpledger
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
	# the ledger and consensus again without the optional C fast paths (same results)
	TPLEDGER_NO_SPEEDUPS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests/ledger tests/consensus

soak: $(STAMP)
	$(BIN)/python -m pytest -q -s -m soak -p no:cacheprovider  # TPLEDGER_SOAK_RUNS=100000 make soak

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info ledger/*.so
