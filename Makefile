# Two commands do all the set-up: `make demo` (the main job) and `make test`.
# Each creates the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/demo
DEMO_SCORE ?= music21:bach/bwv66.6

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch first: an open range would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/structdiff analyze $(DEMO_SCORE)
	$(BIN)/structdiff render $(DEMO_SCORE) --png $(DEMO_OUT)/song.png --midi $(DEMO_OUT)/song.mid
	$(BIN)/structdiff plan --form "A8 B8 A8 C8" --style chorale --seed 1 --out $(DEMO_OUT)/plan.json
	@echo "wrote $(DEMO_OUT)/song.mid, $(DEMO_OUT)/song.png and $(DEMO_OUT)/plan.json"

test: $(BIN)/.installed
	$(BIN)/ruff check structdiff tests evaluation
	WANDB_MODE=disabled $(BIN)/pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
