# Two commands do all set-up on a fresh machine: `make demo` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.egoflow-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch and torchvision come from the registry as a matching pair (no local-wheel pin: see README)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/egoflow demo --out demo_out

# fail fast: an upward import or a cycle (import-linter contracts in pyproject.toml) or a lint error stops
# the run before the tests
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/extract_throughput.py
	$(BIN)/python benchmarks/store_load.py
	$(BIN)/python benchmarks/kts.py
	$(BIN)/python benchmarks/heads_train.py
	$(BIN)/python benchmarks/fused_query_reuse.py
	$(BIN)/python benchmarks/fused_throughput.py --frames 4
	$(BIN)/python benchmarks/search_scale.py
	$(BIN)/python benchmarks/decode_throughput.py

clean:
	rm -rf demo_out bench_out .pytest_cache
