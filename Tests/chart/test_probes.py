"""The webhook Deployment's probes, as rendered, run against the real `berth serve` started with
the rendered arguments — the way the kubelet runs them (HTTPS without a client certificate and
without verifying, HTTP as is). With clientCA set (the "everything" value set) the TLS port wants
a client certificate; the probes must still pass, and readiness must fail from SIGTERM on while
Berth keeps answering for the rendered shutdown delay."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from test_self_mutation import berth_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubelet_probe(probe: dict, ports: dict[str, int]) -> int:
    """One httpGet probe as the kubelet does it: the status code, or 0 when no answer came."""
    get = probe["httpGet"]
    port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
    if get.get("scheme", "HTTP") == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the kubelet does not verify, and has no client certificate
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=probe.get("timeoutSeconds", 1))
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=probe.get("timeoutSeconds", 1))
    try:
        connection.request("GET", get["path"])
        return connection.getresponse().status
    except (OSError, ssl.SSLError):
        return 0
    finally:
        connection.close()


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_rendered_probes_pass_against_berth_serve(render, tmp_path, name):
    binary = berth_binary()
    r = render(name)
    pod = r.webhook_deployment()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    client_auth = any(arg.startswith("--client-ca-file") for arg in container["args"])
    assert client_auth == (name == "everything")
    (tmp_path / "config.yaml").write_text(r.one("ConfigMap", f"{r.fullname}-config")["data"]["config.yaml"])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
        check=True, capture_output=True,
    )
    (tmp_path / "ca.crt").write_text((tmp_path / "tls.crt").read_text())
    # The container's named ports, on free ports of this machine.
    chosen = {p["containerPort"]: free_port() for p in container["ports"]}
    ports = {p["name"]: chosen[p["containerPort"]] for p in container["ports"]}
    args, delay = [], None
    for arg in container["args"]:
        flag, _, value = arg.partition("=")
        if flag in ("--port", "--metrics-port"):
            value = str(chosen[int(value)])
        elif value.startswith("/etc/berth/"):
            value = str(tmp_path / os.path.basename(value))
        if flag == "--shutdown-delay":
            delay = float(value)
        args.append(f"{flag}={value}" if value else flag)
    assert delay and delay > 0
    proc = subprocess.Popen([binary, *args, "--bind-address=127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        while line and "berth webhook serving" not in line:
            line = proc.stdout.readline()
        assert "berth webhook serving" in line, "berth serve did not start"
        if client_auth:
            # The TLS port refuses a client without a certificate: the reason probes cannot go there.
            assert kubelet_probe({"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}}, ports) == 0
        assert kubelet_probe(container["readinessProbe"], ports) == 200
        assert kubelet_probe(container["livenessProbe"], ports) == 200

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # Awaited: the signal is handled on Berth's own time. It must turn within the delay, while
        # the liveness probe (and every request) is still answered.
        ready = kubelet_probe(container["readinessProbe"], ports)
        while ready == 200 and time.monotonic() - signalled < delay:
            ready = kubelet_probe(container["readinessProbe"], ports)
        assert ready == 503, f"readiness after SIGTERM: {ready}"
        assert time.monotonic() - signalled < delay, "readiness still passed at the end of the shutdown delay"
        assert kubelet_probe(container["livenessProbe"], ports) == 200  # alive while it drains
        assert proc.wait(timeout=pod["terminationGracePeriodSeconds"]) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
