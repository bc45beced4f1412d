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


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_berth_does_not_mutate_its_own_pod(render, tmp_path, name):
    binary = berth_binary()
    r = render(name)
    template = r.webhook_deployment()["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": f"{r.fullname}-7d9f8c6b5-x2x7q", "namespace": r.value_set.namespace},
        "spec": template["spec"],
    }
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(yaml.safe_dump(pod))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(r.one("ConfigMap", f"{r.fullname}-config")["data"]["config.yaml"])

    proc = subprocess.run(
        [binary, "mutate", "-f", str(pod_file), "--config", str(config_file), "-o", "yaml"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, f"berth mutate failed ({proc.returncode}):\n{proc.stderr}"
    assert yaml.safe_load(proc.stdout) == pod, "berth mutated its own webhook pod"
