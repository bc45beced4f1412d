"""Fixtures for the Berth chart test (helpers live in chart_render.py)."""

from __future__ import annotations

import pytest

from chart_render import VALUE_SETS, Helm, Rendered, helm_binary


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(helm_binary())


@pytest.fixture(params=list(VALUE_SETS), scope="session")
def rendered(request, helm) -> Rendered:
    return helm.template(VALUE_SETS[request.param])


@pytest.fixture(scope="session")
def render(helm):
    """render("name") → the Rendered output of a named value set."""
    return lambda name, *extra: helm.template(VALUE_SETS[name], *extra)
