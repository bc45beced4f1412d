# The Helm chart test. Included by the main Makefile; paths are relative to the repo root.
# `make chart-test` (after `make tools`, which fetches helm and the Python packages) renders charts/berth for a
# matrix of values, lints it, validates every object and asserts its properties.
# The self-mutation test runs the berth binary: BERTH_BIN (default .build/debug/berth).

CHART_TEST_PYTHON ?= python3

.PHONY: chart-test
chart-test: ## The Helm chart test: render a matrix of values, lint, validate, assert (after make tools).
	HELM="$$(bash Tests/chart/install-helm.sh)" $(CHART_TEST_PYTHON) -m pytest -q Tests/chart
