# The README's two commands: `make demo` (main job on the built-in simulator) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format typecheck bench clean vllm-contract docs

$(BIN)/.core: pyproject.toml
	@echo "setting up $(VENV) (first run only)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e .
	@touch $@

$(BIN)/.dev: $(BIN)/.core
	@echo "installing the dev and embed extras into $(VENV) (first run only)"
	@$(BIN)/python -m pip install -q -e ".[dev,embed]"
	@touch $@

demo: $(BIN)/.core
	@$(BIN)/langgraph-tts demo

test: $(BIN)/.dev
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

$(BIN)/.docs: $(BIN)/.core
	@echo "installing the docs extra into $(VENV) (first run only)"
	@$(BIN)/python -m pip install -q -e ".[docs]"
	@touch $@

docs: $(BIN)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(BIN)/.dev
	$(BIN)/ruff check langgraph_tts tests benchmarks examples
	$(BIN)/ruff format --check langgraph_tts tests benchmarks examples

format: $(BIN)/.dev
	$(BIN)/ruff check --fix langgraph_tts tests benchmarks examples
	$(BIN)/ruff format langgraph_tts tests benchmarks examples

typecheck: $(BIN)/.dev
	$(BIN)/mypy langgraph_tts

bench: $(BIN)/.dev
	$(BIN)/python benchmarks/allocation.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/scale.py

# Regenerate tests/vllm_contract/ from vLLM's own protocol code: `make vllm-contract VLLM=0.33.0`
# (downloads the wheel with pip, ~330 MB; no GPU, vLLM is not installed).
VLLM ?= 0.32.0
vllm-contract: $(BIN)/.dev
	$(BIN)/python scripts/vllm_contract.py --version $(VLLM)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build site *.egg-info
