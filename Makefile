# Tollgate developer entry points. Everything runs through uv in the workspace venv (.venv).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# `uv` if on PATH, else the module a `pip install uv` just put in place (evaluated at each use)
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
STACK = $(UV) run --frozen tollgate-stack

# pytest exits 5 when it collected nothing: that is a failure here, and says so
define pytest
	rc=0; $(UV) run --frozen pytest $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests in: $(1)" >&2; fi; \
	exit $$rc
endef

.PHONY: help setup tools run up down status test test-unit test-integration proto lint bench bench-tools bench-billing bench-training bench-usage bench-usage-latency bench-vectors bench-billing-scale clean console-assets

help:
	@echo "make run     install what is missing, start the whole platform with the local model"
	@echo "make up      start the platform (no local model);  make down: stop it;  make status"
	@echo "make test    unit tests of every package, then integration tests against a real stack"
	@echo "make tools  kustomize and promtool, which the deploy tests use"
	@echo "make proto   regenerate tollgate.contracts from proto/"
	@echo "make lint    ruff + mypy;  make bench: gateway overhead, billing throughput and lag, training throughput; make bench-usage: usage storage at 20M rows"
	@echo "make clean   down + remove .local/"

setup:
	@scripts/provision-system.sh
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9" \
		|| python3 -m pip install --quiet --break-system-packages "uv==0.13.9"
	$(UV) sync --all-groups --frozen
	$(STACK) fetch-kafka

# the deploy tests render deploy/k8s with kustomize and deploy/helm with helm (both from the Go module
# proxy, pinned) and check the dashboard's PromQL with promtool (Debian's prometheus package; its
# service is not started)
KUSTOMIZE_VERSION = v5.7.1
HELM_VERSION = v3.21.4
TOOLS_BIN = $(CURDIR)/.local/tools/bin
tools:
	@test -x $(TOOLS_BIN)/kustomize || GOBIN=$(TOOLS_BIN) GOFLAGS=-mod=mod \
		go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@test -x $(TOOLS_BIN)/helm || GOBIN=$(TOOLS_BIN) GOFLAGS=-mod=mod \
		go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@command -v promtool >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo || true ); \
		$$SUDO apt-get install -y --no-install-recommends prometheus \
		|| { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends prometheus; }; }

run: setup
	$(STACK) run

up:
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

test: test-unit test-integration

# the services' own tests use real PostgreSQL and Redis: those of the test profile (25532, 26479)
test-unit: setup tools
	$(STACK) --profile test up --infra-only
	@export KUSTOMIZE=$(TOOLS_BIN)/kustomize; $(call pytest,services libs tools tests/deploy)

test-integration: setup
	@$(call pytest,tests/integration)

proto:
	$(UV) run --frozen python scripts/gen_protos.py

# re-vendors the web console's chart library (committed; run only to change its pinned version: docs/console.md)
console-assets:
	scripts/vendor-console-assets.sh

lint:
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	cd libs/common/src && $(UV) run --frozen mypy -p tollgate.common --config-file ../../../pyproject.toml

# the gateway bench keeps the stack up for the billing bench, which stops it (unless TOLLGATE_KEEP_STACK=1)
# wrk drives the gateway bench (a Debian package: installed here when missing)
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo || true ); \
		$$SUDO apt-get install -y --no-install-recommends wrk \
		|| { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends wrk; }; }

bench: setup bench-tools
	TOLLGATE_KEEP_STACK=1 $(UV) run --frozen python bench/run.py
	TOLLGATE_KEEP_STACK=1 $(UV) run --frozen python bench/billing.py
	$(UV) run --frozen python bench/training.py

# LoRA training throughput (our orchestration vs a plain transformers Trainer) and job start latency
bench-training: setup
	$(UV) run --frozen python bench/training.py

# usage storage at scale: 20M usage facts loaded (BENCH_USAGE_ARGS="--rows 1000000" for a quick run),
# report query p50/p99 and the analytics consumer's CPU per event, small vs big tables
bench-usage: setup
	$(UV) run --frozen python bench/usage_storage.py $(BENCH_USAGE_ARGS)

# latency percentiles, the errors feed and filtered usage read from their rollups (docs/benchmarks.md)
bench-usage-latency: setup
	$(UV) run --frozen python bench/usage_latency.py $(BENCH_USAGE_LATENCY_ARGS)

# the training service's ANN index on 1M clustered 384-dimensional vectors (BENCH_VECTORS_ARGS="--n 300000")
bench-vectors: setup
	$(UV) run --frozen python bench/vectors.py $(BENCH_VECTORS_ARGS)

bench-billing: setup
	$(UV) run --frozen python bench/billing.py

# billing's per-event tables (settlements, ledger) at 20M rows each: the worker's CPU per settled
# event, small vs big tables (BENCH_BILLING_SCALE_ARGS="--rows 1000000" for a quick run)
bench-billing-scale: setup
	$(UV) run --frozen python bench/billing_scale.py $(BENCH_BILLING_SCALE_ARGS)

# stops every profile found under .local/ (dev, test, scratch ones), then removes all local state
clean:
	@for dir in .local/*/; do \
		[ -d "$$dir" ] || continue; \
		profile=$$(basename "$$dir"); \
		case "$$profile" in kafka-libs|kafka-libs.partial|models) continue ;; esac; \
		$(STACK) --profile "$$profile" down; \
	done
	rm -rf .local
