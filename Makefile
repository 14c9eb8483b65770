# Every target that runs Python creates .venv first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
# Most test time is waiting on simulated pods and timers (load average ~2 with three workers), so four
# workers on two cores beat three (BENCHMARKS.md, "Suite on a busy machine"); whole files go to one
# worker (--dist loadfile) because modules share a sandbox and a controller.
PYTEST_WORKERS ?= 4
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test test-loaded lint typecheck unit demo sandbox e2e e2e-kind bench image clean

INSTALL_LOG := $(VENV)/install.log

# pip's output goes to $(INSTALL_LOG), one line says what is happening; on a failure the log's end is shown.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pyrollouts and its dependencies into $(VENV) (log: $(INSTALL_LOG)) ..."
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[test]'; } \
		>$(INSTALL_LOG) 2>&1 || { tail -n 20 $(INSTALL_LOG); echo "install failed: see $(INSTALL_LOG)"; exit 1; }
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check rollouts analysis tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict rollouts analysis tests benchmarks

test: lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# The suite beside two CPU-bound processes, RUNS times in a row (README "Tests on a busy machine").
RUNS ?= 3
test-loaded: lint typecheck
	RUNS=$(RUNS) PYTEST_WORKERS=$(PYTEST_WORKERS) BIN=$(BIN) tests/load.sh

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

demo: $(STAMP)
	@$(BIN)/pyrollouts demo

sandbox: $(STAMP)
	$(BIN)/pyrollouts sandbox --kubeconfig $(CURDIR)/.demo/kubeconfig

e2e: $(STAMP)
	PYROLLOUTS_E2E=1 $(BIN)/pytest -q tests/scenarios

# The scenarios on a kind cluster running deploy/base (needs docker, kind, kubectl): README "End-to-end on kind".
e2e-kind: $(STAMP)
	PYTHON=$(BIN)/python scripts/e2e-kind.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks.measurement_deadline
	$(BIN)/python -m benchmarks.sandbox_throughput
	$(BIN)/python -m benchmarks.promote_latency --promotions 100
	$(BIN)/python -m benchmarks.judge --quick
	$(BIN)/python -m benchmarks.scale --rollouts 1000

# The controller's OCI image without Docker (root, apt-get install mmdebstrap umoci): README "Container image".
IMAGE_ARCHIVE ?= dist/pyrollouts-image.oci.tar
image: $(STAMP)
	image/build.sh $(IMAGE_ARCHIVE) $(BIN)/python

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
