"""Berth must never mutate itself: its own webhook pod, as the chart renders it, goes through
`berth mutate` with the chart's rendered config and comes out unchanged."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from chart_render import REPO


def berth_binary() -> str:
    path = str(REPO / os.environ.get("BERTH_BIN", ".build/debug/berth"))  # relative: to the repo root
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"berth binary not found at {path!r}: build it first (`swift build --product berth`, "
            "which `make test` does) or point BERTH_BIN at it"
        )
    return path


@pytest.mark.parametrize("name", ["defaults", "everything", "provisioner"])
def test_berth_does_not_mutate_its_own_pod(render, tmp_path, name):
    binary = berth_binary()
    r = render(name)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(r.one("ConfigMap", f"{r.fullname}-config")["data"]["config.yaml"])
    # Every Deployment of the release: the webhook's and, when enabled, the provisioner's.
    deployments = r.all("Deployment")
    assert deployments
    for deployment in deployments:
        template = deployment["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {**template["metadata"], "name": f"{deployment['metadata']['name']}-7d9f8c6b5-x2x7q", "namespace": r.value_set.namespace},
            "spec": template["spec"],
        }
        pod_file = tmp_path / "pod.yaml"
        pod_file.write_text(yaml.safe_dump(pod))
        proc = subprocess.run(
            [binary, "mutate", "-f", str(pod_file), "--config", str(config_file), "-o", "yaml"],
            capture_output=True, text=True, timeout=30,
        )
        assert proc.returncode == 0, f"berth mutate failed ({proc.returncode}):\n{proc.stderr}"
        assert yaml.safe_load(proc.stdout) == pod, f"berth mutated its own pod ({deployment['metadata']['name']})"


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_rendered_command_line_and_config_start_berth(render, tmp_path, name):
    """The webhook container's args and ConfigMap, as rendered, are accepted by the real
    `berth serve`: it starts serving (paths rewritten to a temp dir, ports to 0), then exits 0 on
    SIGTERM. A renamed flag or a config field Berth does not know fails here, not on a cluster."""
    import signal

    binary = berth_binary()
    r = render(name)
    args = r.webhook_deployment()["spec"]["template"]["spec"]["containers"][0]["args"]
    (tmp_path / "config.yaml").write_text(r.one("ConfigMap", f"{r.fullname}-config")["data"]["config.yaml"])
    ca_key = tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(ca_key), "-out", str(tmp_path / "tls.crt")],
        check=True, capture_output=True,
    )
    (tmp_path / "ca.crt").write_text((tmp_path / "tls.crt").read_text())
    rewritten = []
    for arg in args:
        flag, _, value = arg.partition("=")
        if flag in ("--port", "--metrics-port"):
            value = "0"
        elif value.startswith("/etc/berth/"):
            value = str(tmp_path / os.path.basename(value))
        rewritten.append(f"{flag}={value}" if value else flag)
    proc = subprocess.Popen([binary, *rewritten, "--bind-address=127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        lines = [first]
        while "berth webhook serving" not in lines[-1] and lines[-1]:
            lines.append(proc.stdout.readline())
        assert "berth webhook serving" in lines[-1], f"berth serve did not start with {rewritten}:\n{''.join(lines)}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
