# Two commands set up a fresh machine:  `make repro` (install + dvc repro)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test test-fast test-unit test-integration test-e2e slurm-test lint lab bench cost clean
install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name compass --display-name "Python (compass)"
	rm -f $(VENV)/.installed-* && touch $@

# EXECUTOR=local|slurm: the stale stages run first as parallel jobs (compass.cluster; WORKERS at
# once, GPUS on this machine, SLURM a JSON of submitit parameters), then dvc repro records nothing new
EXECUTOR ?=
WORKERS ?= 2
GPUS ?= 0
SLURM ?= {}

repro: install          ## run the whole pipeline (params.yaml's profile; PROFILE=paper switches); the book ends in book/_build/html
	@$(if $(PROFILE),$(BIN)/python -m compass.cli profile $(PROFILE))
	@$(BIN)/python -m compass.cli check --dry   # a bad param or a missing hub asset stops here, in one line, before DVC deletes anything
	$(if $(EXECUTOR),$(BIN)/python -m compass.cluster --executor $(EXECUTOR) --workers $(WORKERS) --gpus $(GPUS) --slurm '$(SLURM)')
	$(BIN)/dvc repro

# Tiers (tests/tiers.py): unit (in process, seconds), integration (modules together, fixtures,
# subprocesses), e2e (dvc repro, notebooks, the built book). PYTEST_ARGS passes more options.
PYTEST := $(BIN)/python -m pytest --durations=30 $(PYTEST_ARGS)

test: install lint      ## lint, then the full test suite, slowest 30 listed (what .ci/run runs)
	$(PYTEST)

test-fast: install      ## unit tests only: no book build, no papermill, no dvc repro
	$(PYTEST) -m unit

test-unit: test-fast    ## (the same as test-fast)

test-integration: install  ## integration tests only
	$(PYTEST) -m integration

test-e2e: install       ## end-to-end tests only: the pipeline, notebooks, the book
	$(PYTEST) -m e2e

slurm-test: install     ## the SLURM executor on a one-node cluster started on this machine (needs root)
	command -v slurmctld >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y --no-install-recommends slurm-wlm munge)
	$(BIN)/python -m pytest tests/test_cluster.py -k slurm

lint: install           ## ruff with pyproject.toml's rules
	$(BIN)/ruff check .

lab: install            ## explore the notebooks
	$(BIN)/jupyter lab notebooks/

cost: install           ## adapters, tokens, requests and GPU-hours of a full run, from params.yaml alone
	$(BIN)/python -m compass.cost

bench: install          ## selection and encoder benchmarks (prints tables)
	$(BIN)/python benchmarks/bench_selection.py

clean:
	rm -rf book/_build book/_src data/pool data/languages data/executed

# Results without recompute (README "Results without recompute, and the book online"). The remote
# is .dvc/config's default; STAGES= limits push/pull to some stages or outputs (e.g. STAGES=pool).
.PHONY: push pull book
push: install           ## upload the DVC-cached outputs of the last run to the default remote
	$(BIN)/dvc push $(STAGES)

pull: install           ## download them (fails when the remote lacks any): results without recompute
	$(BIN)/dvc pull $(STAGES)

book: install           ## build book/_build/html from the existing outputs (the DVC `book` stage)
	$(BIN)/dvc repro book
