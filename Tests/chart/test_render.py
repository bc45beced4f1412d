"""Every value set renders, lints, validates against the Kubernetes schemas, and labels everything;
a typo in values fails with the bad key named."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from chart_render import CHART, VALUE_SETS, VALUES

# Kinds from CRDs: kubernetes-validate has no schema for them, so they are checked by hand
# (test_crd_objects_by_hand below).
CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}

REQUIRED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
}


def test_lint_strict_default(helm):
    proc = helm.run("lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", [n for n, vs in VALUE_SETS.items() if vs.files])
def test_lint_strict_with_values(helm, name):
    vs = VALUE_SETS[name]
    proc = helm.run("lint", "--strict", str(CHART), *vs.helm_args())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict(rendered):
    builtin = [o for o in rendered.objects if (o["apiVersion"], o["kind"]) not in CRD_KINDS]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{rendered.value_set.name}.yaml"
        path.write_text(yaml.safe_dump_all(builtin))
        proc = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", rendered.value_set.validate_as, str(path)],
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout + proc.stderr


def test_every_object_has_the_standard_labels(rendered):
    vs = rendered.value_set
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert REQUIRED_LABELS <= labels.keys(), f"{where} lacks {REQUIRED_LABELS - labels.keys()}"
        assert labels["app.kubernetes.io/instance"] == vs.release, where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["app.kubernetes.io/part-of"] == "berth", where
        assert labels["app.kubernetes.io/component"] in {"webhook", "provisioner", "image-puller"}, where
        template = obj.get("spec", {}).get("template")
        if template:
            assert REQUIRED_LABELS <= template["metadata"]["labels"].keys(), f"{where} pod template"


def test_namespaced_objects_are_in_the_release_namespace(rendered):
    cluster_scoped = {"MutatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding"}
    for obj in rendered.objects:
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == rendered.value_set.namespace, obj["kind"]


def test_names_are_unique_per_kind(rendered):
    seen = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "args, bad_key",
    [
        (["--set", "webhook.replicaCont=3"], "replicaCont"),
        (["--set", "config.webhook.gpuTaint[0].key=x"], "gpuTaint"),
        (["--set", "certManger.enabled=true"], "certManger"),
        (["--set", "provisioner.cloud=gcp"], "provisioner/cloud"),
        (["--set", "webhook.failurePolicy=Foo"], "failurePolicy"),
        (["--set", "webhook.timeoutSeconds=60"], "timeoutSeconds"),
    ],
)
def test_values_typo_fails_naming_the_key(helm, args, bad_key):
    proc = helm.run("template", "berth", str(CHART), *args)
    assert proc.returncode != 0, f"helm template accepted {args}"
    assert bad_key in proc.stderr, proc.stderr


def test_values_typo_fails_install_too(helm):
    proc = helm.run("install", "berth", str(CHART), "--dry-run=client", "--set", "webhook.replicaCont=3")
    assert proc.returncode != 0
    assert "replicaCont" in proc.stderr


def test_values_file_typo_fails_lint(helm, tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("metrics:\n  serviceMonitr: {enabled: true}\n")
    proc = helm.run("lint", "--strict", str(CHART), "--values", str(bad))
    assert proc.returncode != 0
    assert "serviceMonitr" in proc.stdout + proc.stderr


def test_value_set_files_exist():
    for vs in VALUE_SETS.values():
        for f in vs.files:
            assert (VALUES / f).is_file(), f


# --- CRD objects, validated by hand: kubernetes-validate has no cert-manager/ServiceMonitor schemas.

ISSUER_TYPES = {"selfSigned", "ca", "acme", "vault", "venafi"}
CERTIFICATE_FIELDS = {
    "secretName", "secretTemplate", "commonName", "dnsNames", "duration", "renewBefore",
    "privateKey", "usages", "issuerRef", "isCA",
}
SERVICEMONITOR_ENDPOINT_FIELDS = {"port", "scheme", "path", "interval", "scrapeTimeout"}


def check_crd_object(obj: dict) -> None:
    where = f"{obj['kind']}/{obj['metadata'].get('name')}"
    assert obj["metadata"].get("name") and obj["metadata"].get("namespace"), where
    spec = obj["spec"]
    if obj["kind"] == "Issuer":
        kinds = ISSUER_TYPES & spec.keys()
        assert len(kinds) == 1 and spec.keys() == kinds, f"{where}: exactly one issuer type, got {spec}"
        if "ca" in spec:
            assert spec["ca"].keys() == {"secretName"} and spec["ca"]["secretName"], where
        if "selfSigned" in spec:
            assert spec["selfSigned"] == {}, where
    elif obj["kind"] == "Certificate":
        assert spec.keys() <= CERTIFICATE_FIELDS, f"{where}: unknown {spec.keys() - CERTIFICATE_FIELDS}"
        assert spec["secretName"], where
        assert spec["issuerRef"]["name"] and spec["issuerRef"]["kind"] in {"Issuer", "ClusterIssuer"}, where
        assert spec.get("commonName") or spec.get("dnsNames"), f"{where}: needs a commonName or dnsNames"
        assert spec["privateKey"]["algorithm"] in {"RSA", "ECDSA", "Ed25519"}, where
        for usage in spec.get("usages", []):
            assert usage in {"server auth", "client auth", "digital signature", "key encipherment",
                             "cert sign"}, f"{where}: usage {usage}"
    elif obj["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"], where
        assert spec["endpoints"], where
        for ep in spec["endpoints"]:
            assert ep.keys() <= SERVICEMONITOR_ENDPOINT_FIELDS and ep["port"], where
            assert ep["scheme"] in {"http", "https"}, where
    else:
        raise AssertionError(f"no hand check for {where}")


def test_crd_objects_by_hand(rendered):
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            check_crd_object(obj)


def test_servicemonitor_selects_the_metrics_services(render):
    r = render("everything")
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["platform"]}
    services = [
        s for s in r.all("Service")
        if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["labels"]["app.kubernetes.io/component"] for s in services} == {
        "webhook", "provisioner"
    }
    for s in services:
        assert "metrics" in {p["name"] for p in s["spec"]["ports"]}
    assert render("defaults").all("ServiceMonitor") == []


def test_notes_tell_how_to_check(helm):
    proc = helm.run("install", "berth", str(CHART), "--dry-run=client", "--namespace", "berth-system",
                    "--set-string", "webhook.namespaceSelector.matchLabels.berth\\.dev/rollout=true")
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "berth mutate -f gpu-pod.yaml --config berth-config.yaml -o yaml" in notes
    assert "nvidia.com/gpu: 1" in notes
    assert "kubectl label namespace berth-test berth.dev/rollout=true" in notes
    assert "-o jsonpath='{.spec.tolerations}" in notes and "{.spec.affinity}" in notes
