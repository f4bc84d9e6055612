# Two commands do all the set-up: `make demo` (the main job) and `make test`.
# Each creates the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/demo
DEMO_ARGS ?= --form "i4 A8 B8 A8 B8 o4" --style pop --seed 1

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch first: an open range would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# the main job: a new 40-bar, 6-track band song (drums, bass, keys, guitar, strings, melody)
# from the shipped band planner and arranger
demo: $(BIN)/.installed
	$(BIN)/structdiff generate $(DEMO_ARGS) --out $(DEMO_OUT)/song.mid

test: $(BIN)/.installed
	$(BIN)/ruff check structdiff tests evaluation
	WANDB_MODE=disabled $(BIN)/pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
