"""Without cert-manager, the generated CA and certificate survive upgrades: the chart looks up
its existing Secret and reuses it. `helm template --dry-run=server` against a fake API server
runs that lookup for real."""

from __future__ import annotations

import pytest
import yaml

from chart_render import CHART
from fake_apiserver import FakeAPIServer

NS, SECRET = "berth-system", "berth-tls"


def render_against(helm, api: FakeAPIServer, tmp_path) -> dict:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proc = helm.run(
        "template", "berth", str(CHART), "--namespace", NS, "--kubeconfig", str(kubeconfig),
        "--dry-run=server", "--disable-openapi-validation",
    )
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    secret = next(o for o in objects if o["kind"] == "Secret")
    mwc = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    return {"secret": secret["data"], "caBundle": mwc["webhooks"][0]["clientConfig"]["caBundle"]}


def test_existing_secret_is_reused_on_upgrade(helm, tmp_path):
    with FakeAPIServer() as api:
        first = render_against(helm, api, tmp_path)  # install: nothing to find, generate
        assert f"/api/v1/namespaces/{NS}/secrets/{SECRET}" in api.requests
        api.put_secret(NS, SECRET, first["secret"], release="berth")
        upgrade = render_against(helm, api, tmp_path)
    assert upgrade["secret"] == first["secret"]
    assert upgrade["caBundle"] == first["caBundle"] == first["secret"]["ca.crt"]


@pytest.mark.parametrize("missing", ["ca.crt", "tls.crt", "tls.key"])
def test_incomplete_secret_is_regenerated(helm, tmp_path, missing):
    with FakeAPIServer() as api:
        first = render_against(helm, api, tmp_path)
        api.put_secret(NS, SECRET, {k: v for k, v in first["secret"].items() if k != missing}, release="berth")
        again = render_against(helm, api, tmp_path)
    assert again["secret"]["ca.crt"] != first["secret"]["ca.crt"]
    assert again["caBundle"] == again["secret"]["ca.crt"]
