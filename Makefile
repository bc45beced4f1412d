# Berth — build, test, run, benchmark. `make help` lists the targets.
SWIFT ?= swift
BERTH := .build/debug/berth

.PHONY: help build release test test-swift run mutate-examples certs bench bench-mutate clean

help: ## This list.
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

build: ## Debug build of berth and its tests' helpers.
	$(SWIFT) build

release: ## Optimised build: .build/release/berth.
	$(SWIFT) build -c release --product berth

test: build test-swift chart-test ## Every test: Swift unit and integration tests, then the Helm chart test.

test-swift: ## Swift tests only (needs kubectl and kubernetes-validate on PATH: see .ci/run).
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

run: build mutate-examples ## Build and show Berth's decisions on the example manifests.

mutate-examples:
	@for f in Tests/Fixtures/manifests/*.yaml; do \
	  echo "== berth mutate -f $$f -o patch -v"; \
	  $(BERTH) mutate -f $$f -o patch -v || exit 1; \
	done

bench: bench-mutate ## Every benchmark; figures go in BENCHMARKS.md.

bench-mutate: ## Median time to classify and patch the z2jh GPU notebook pod.
	$(SWIFT) build -c release --product berth-bench
	.build/release/berth-bench mutate

clean: ## Remove build products and the tool cache.
	rm -rf .build .cache

include Tests/chart/chart.mk
include Tests/Fuzz/fuzz.mk
