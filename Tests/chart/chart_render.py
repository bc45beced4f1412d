"""Rendering helpers for the Berth chart test: one `helm template` per value set, cached."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = REPO / "charts" / "berth"
VALUES = HERE / "values"

# kubernetes-validate ships schemas for 1.25–1.37; 1.34 is recent and widely run.
K8S_VERSION = "1.34.0"


@dataclass(frozen=True)
class ValueSet:
    """One row of the test matrix: how helm is called and what the release looks like."""

    name: str
    files: tuple[str, ...] = ()
    release: str = "berth"
    namespace: str = "berth-system"
    kube_version: str | None = None
    validate_as: str = K8S_VERSION

    def helm_args(self) -> list[str]:
        args = ["--namespace", self.namespace]
        for f in self.files:
            args += ["--values", str(VALUES / f)]
        if self.kube_version:
            args += ["--kube-version", self.kube_version]
        return args


VALUE_SETS = {
    vs.name: vs
    for vs in [
        ValueSet("defaults"),
        ValueSet("cert-manager", files=("cert-manager.yaml",)),
        ValueSet("provisioner", files=("provisioner.yaml",)),
        ValueSet("no-match-conditions", files=("no-match-conditions.yaml",)),
        # A cluster older than 1.28 has no matchConditions: the chart leaves them out itself.
        ValueSet("kube-1.27", kube_version="1.27.0", validate_as="1.27.0"),
        ValueSet("everything", files=("everything.yaml",), release="notebooks", namespace="platform"),
        ValueSet("warm", files=("warm.yaml",), release="seoul", namespace="gpu-system"),
    ]
}


def helm_binary() -> str:
    helm = os.environ.get("HELM")
    if not helm:
        helm = subprocess.run(
            ["bash", str(HERE / "install-helm.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
    if not Path(helm).is_file():
        pytest.fail(f"helm not found at {helm!r}: run `bash Tests/chart/install-helm.sh`")
    return helm


@dataclass
class Rendered:
    value_set: ValueSet
    text: str
    objects: list[dict] = field(default_factory=list)

    def all(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def webhook_deployment(self) -> dict:
        return self.one_component("Deployment", "webhook")

    def one_component(self, kind: str, component: str) -> dict:
        found = [
            o
            for o in self.all(kind)
            if o["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} of component {component}, found {len(found)}"
        return found[0]

    def berth_config(self, configmap: str | None = None) -> dict:
        cm = self.one("ConfigMap", configmap or f"{self.fullname}-config")
        return yaml.safe_load(cm["data"]["config.yaml"])

    @property
    def fullname(self) -> str:
        vs = self.value_set
        return vs.release if "berth" in vs.release else f"{vs.release}-berth"


class Helm:
    def __init__(self, binary: str):
        self.binary = binary
        self._cache: dict[str, Rendered] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=60)

    def template(self, vs: ValueSet, *extra: str) -> Rendered:
        key = vs.name + "\0" + "\0".join(extra)
        if key not in self._cache:
            proc = self.run("template", vs.release, str(CHART), *vs.helm_args(), *extra)
            assert proc.returncode == 0, f"helm template ({vs.name}) failed:\n{proc.stderr}"
            objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
            self._cache[key] = Rendered(vs, proc.stdout, objects)
        return self._cache[key]
