"""The webhook side: MutatingWebhookConfiguration, TLS both ways, the Deployment, Service, PDB and
the rendered BerthConfig."""

from __future__ import annotations

import base64
import hashlib
import re

import celpy
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from chart_render import CHART, VALUE_SETS

ALWAYS_EXEMPT = {"kube-system", "kube-public", "kube-node-lease"}


def hook(r) -> dict:
    mwc = r.one("MutatingWebhookConfiguration")
    assert len(mwc["webhooks"]) == 1
    return mwc["webhooks"][0]


def webhook_pod_spec(r) -> dict:
    return r.webhook_deployment()["spec"]["template"]["spec"]


def container(r) -> dict:
    (c,) = webhook_pod_spec(r)["containers"]
    return c


# --- MutatingWebhookConfiguration


def test_webhook_call_settings(rendered):
    h = hook(rendered)
    everything = rendered.value_set.name == "everything"
    assert h["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert h["sideEffects"] == "None"
    assert h["failurePolicy"] == ("Fail" if everything else "Ignore")
    assert h["timeoutSeconds"] == (3 if everything else 5)
    assert h["reinvocationPolicy"] == "IfNeeded"
    assert h["matchPolicy"] == "Equivalent"


def test_webhook_rules_are_pod_create_only(rendered):
    assert hook(rendered)["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]


def test_webhook_client_config_points_at_the_service(rendered):
    vs = rendered.value_set
    service = rendered.one("Service", rendered.fullname)
    assert hook(rendered)["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": vs.namespace,
        "path": "/mutate",
        "port": 443,
    }


def test_namespace_selector_excludes_system_own_and_disabled_namespaces(rendered):
    vs = rendered.value_set
    sel = hook(rendered)["namespaceSelector"]
    by_key = {e["key"]: e for e in sel["matchExpressions"]}
    names = by_key["kubernetes.io/metadata.name"]
    assert names["operator"] == "NotIn"
    expected = ALWAYS_EXEMPT | {vs.namespace}
    if vs.name == "everything":
        expected |= {"airflow-system", "monitoring"}
    assert set(names["values"]) == expected
    assert by_key["berth.dev/webhook"] == {"key": "berth.dev/webhook", "operator": "NotIn", "values": ["disabled"]}
    if vs.name == "everything":
        assert sel["matchLabels"] == {"berth.dev/rollout": "true"}
        assert by_key["environment"] == {"key": "environment", "operator": "In", "values": ["dev", "staging"]}
    else:
        assert "matchLabels" not in sel
        assert by_key.keys() == {"kubernetes.io/metadata.name", "berth.dev/webhook"}


def test_match_conditions_present_or_absent_per_switch(rendered):
    h = hook(rendered)
    if rendered.value_set.name in {"no-match-conditions", "kube-1.27"}:
        assert "matchConditions" not in h
    else:
        assert [c["name"] for c in h["matchConditions"]] == ["not-daemonset-pod", "not-mirror-pod"]


def pod(**metadata) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **metadata}, "spec": {}}


CEL_CASES = [
    # (pod, sent to Berth?)
    (pod(), True),
    (pod(annotations={"a": "b"}), True),
    (pod(ownerReferences=[{"kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}]), True),
    (pod(ownerReferences=[{"kind": "StatefulSet", "name": "nb", "apiVersion": "apps/v1"}], annotations={}), True),
    (pod(ownerReferences=[{"kind": "DaemonSet", "name": "nvidia-device-plugin", "apiVersion": "apps/v1"}]), False),
    (pod(ownerReferences=[{"kind": "Node", "name": "n1", "apiVersion": "v1"}],
         annotations={"kubernetes.io/config.mirror": "0f3c"}), False),
    (pod(annotations={"kubernetes.io/config.mirror": ""}), False),
]


@pytest.mark.parametrize(
    "obj, sent", CEL_CASES,
    ids=["bare", "annotated", "replicaset", "statefulset-empty-annotations", "daemonset", "mirror", "mirror-empty"],
)
def test_match_conditions_evaluate_null_safely(render, obj, sent):
    """Run the rendered CEL with a real CEL engine: no error on pods lacking ownerReferences or
    annotations, and DaemonSet/mirror pods filtered out (all conditions must be true to call)."""
    env = celpy.Environment()
    results = []
    for cond in hook(render("defaults"))["matchConditions"]:
        program = env.program(env.compile(cond["expression"]))
        value = program.evaluate({"object": celpy.json_to_cel(obj)})
        assert isinstance(value, celpy.celtypes.BoolType), f"{cond['name']} gave {value!r}"
        results.append(bool(value))
    assert all(results) == sent


# --- TLS


def load_cert(b64: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(b64))


def verify_signed_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    key = ca.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        raise AssertionError(f"unexpected CA key {key!r}")


def service_dns_names(r) -> list[str]:
    svc = f"{r.fullname}.{r.value_set.namespace}.svc"
    return [svc, f"{svc}.cluster.local"]


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if n not in {"cert-manager", "everything"}])
def test_generated_tls_secret_and_ca_bundle_share_one_ca(render, name):
    r = render(name)
    secret = r.one("Secret", f"{r.fullname}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["data"].keys() == {"ca.crt", "tls.crt", "tls.key"}
    h = hook(r)
    assert h["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert "annotations" not in r.one("MutatingWebhookConfiguration")["metadata"]

    ca, cert = load_cert(secret["data"]["ca.crt"]), load_cert(secret["data"]["tls.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    verify_signed_by(cert, ca)
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # The apiserver dials <service>.<namespace>.svc (SNI): the SAN must name it.
    assert sans.get_values_for_type(x509.DNSName) == service_dns_names(r)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    key = base64.b64decode(secret["data"]["tls.key"])
    assert b"PRIVATE KEY" in key


@pytest.mark.parametrize("name", ["cert-manager", "everything"])
def test_cert_manager_chain_and_ca_injection(render, name):
    r = render(name)
    ns, full = r.value_set.namespace, r.fullname
    assert r.all("Secret") == [], "cert-manager owns the TLS Secret"
    mwc = r.one("MutatingWebhookConfiguration")
    assert "caBundle" not in hook(r)["clientConfig"]

    issuers = {i["metadata"]["name"]: i for i in r.all("Issuer")}
    certs = {c["metadata"]["name"]: c for c in r.all("Certificate")}
    serving = certs[f"{full}-serving"]
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{ns}/{full}-serving"

    # selfsigned Issuer → CA Certificate → CA Issuer → serving Certificate
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    ca_cert = next(c for c in certs.values() if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"])
    assert ca_cert["spec"]["isCA"] is True
    root = issuers[ca_cert["spec"]["issuerRef"]["name"]]
    assert root["spec"] == {"selfSigned": {}}
    assert "isCA" not in serving["spec"]

    assert serving["spec"]["dnsNames"] == service_dns_names(r)
    assert "server auth" in serving["spec"]["usages"]
    # The Deployment mounts the Secret the serving Certificate writes.
    tls_volume = next(v for v in webhook_pod_spec(r)["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == serving["spec"]["secretName"] == f"{full}-tls"


def test_generated_ca_is_fresh_per_offline_render(helm):
    """`helm template` has no cluster, so lookup finds no Secret and a new CA is generated each
    time; on a cluster the existing Secret is reused (see test_tls_lookup.py)."""
    a = helm.run("template", "berth", str(CHART), "-s", "templates/tls-secret.yaml")
    b = helm.run("template", "berth", str(CHART), "-s", "templates/tls-secret.yaml")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout != b.stdout


# --- Deployment, Service, PDB


def test_webhook_command_line(rendered):
    args = container(rendered)["args"]
    assert args[0] == "serve"
    for flag in [
        "--tls-cert-file=/etc/berth/tls/tls.crt",
        "--tls-private-key-file=/etc/berth/tls/tls.key",
        "--port=8443",
        "--metrics-port=8080",
        "--config=/etc/berth/config/config.yaml",
        "--webhook=true",
        "--provisioner=false",
    ]:
        assert flag in args
    if rendered.value_set.name == "everything":
        assert "--client-ca-file=/etc/berth/client-ca/ca.crt" in args
        assert "--max-body-bytes=7340032" in args
        assert args[-1] == "--log-level=debug"
    else:
        assert not [a for a in args if a.startswith(("--client-ca-file", "--max-body-bytes"))]


def test_webhook_image_defaults_to_app_version(render, helm):
    chart = helm.run("show", "chart", str(CHART)).stdout
    app_version = next(l.split(":", 1)[1].strip().strip('"') for l in chart.splitlines() if l.startswith("appVersion"))
    assert container(render("defaults"))["image"] == f"berth:{app_version}"
    assert container(render("everything"))["image"] == "berth:0.2.0-rc.1"


def test_app_version_is_the_binary_version(helm):
    """The image's tag defaults to appVersion, and `make image` tags the archive `berth --version`."""
    chart = helm.run("show", "chart", str(CHART)).stdout
    app_version = next(l.split(":", 1)[1].strip().strip('"') for l in chart.splitlines() if l.startswith("appVersion"))
    source = (CHART.parent.parent / "Sources" / "berth" / "Berth.swift").read_text()
    binary_version = re.search(r'static let current = "([^"]+)"', source).group(1)
    assert app_version == binary_version


def test_webhook_replicas_spread_and_pdb(rendered):
    vs = rendered.value_set
    dep = rendered.webhook_deployment()
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] == (3 if vs.name == "everything" else 2)
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = dep["spec"]["template"]["spec"]
    (tsc,) = spec["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "kubernetes.io/hostname"
    assert tsc["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["podAntiAffinity"]

    pdb = rendered.one_component("PodDisruptionBudget", "webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_webhook_probes(rendered):
    c = container(rendered)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"https": 8443, "metrics": 8080}
    ready, live = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
    # Both on the plain port: with clientCA the TLS port wants a client certificate the kubelet lacks.
    assert (ready["path"], ports[ready["port"]], ready["scheme"]) == ("/readyz", 8080, "HTTP")
    assert (live["path"], ports[live["port"]], live["scheme"]) == ("/healthz", 8080, "HTTP")


def test_webhook_security_context(rendered):
    spec = webhook_pod_spec(rendered)
    pod_sc, sc = spec["securityContext"], container(rendered)["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["terminationGracePeriodSeconds"] > 25
    assert spec["automountServiceAccountToken"] is False
    if rendered.value_set.name == "everything":
        assert spec["priorityClassName"] == "system-cluster-critical"
    else:
        assert "priorityClassName" not in spec


def test_webhook_resources(rendered):
    res = container(rendered)["resources"]
    assert {"cpu", "memory"} <= res["requests"].keys()
    assert {"cpu", "memory"} <= res["limits"].keys()


def test_webhook_service_account_has_no_token_and_no_rbac(rendered):
    sa = rendered.one("ServiceAccount", rendered.fullname)
    assert sa["automountServiceAccountToken"] is False
    assert webhook_pod_spec(rendered)["serviceAccountName"] == rendered.fullname
    for binding in rendered.all("RoleBinding") + rendered.all("ClusterRoleBinding"):
        for subject in binding["subjects"]:
            assert subject["name"] != rendered.fullname, f"webhook SA bound by {binding['metadata']['name']}"


def test_webhook_mounts_tls_and_config(rendered):
    spec = webhook_pod_spec(rendered)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in container(rendered)["volumeMounts"]}
    assert volumes["tls"]["secret"]["secretName"] == f"{rendered.fullname}-tls"
    assert mounts["tls"]["mountPath"] == "/etc/berth/tls" and mounts["tls"]["readOnly"]
    assert volumes["config"]["configMap"]["name"] == f"{rendered.fullname}-config"
    assert mounts["config"]["mountPath"] == "/etc/berth/config"
    # No subPath: Secret rotation swaps ..data and must reach the pod (Berth reloads the files).
    assert all("subPath" not in m for m in mounts.values())


def test_config_checksum_rolls_pods(render):
    def checksum(r):
        return r.webhook_deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = render("defaults")
    cm_text = base.one("ConfigMap", "berth-config")["data"]["config.yaml"]
    assert checksum(base) == hashlib.sha256(cm_text.rstrip("\n").encode()).hexdigest()
    changed = render("defaults", "--set", "config.webhook.protectGPUNotebooks=false")
    assert checksum(changed) != checksum(base)


def test_service_routes_443_to_8443_and_metrics(rendered):
    svc = rendered.one("Service", rendered.fullname)
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["https"]["port"] == 443 and ports["https"]["targetPort"] == "https"
    assert ports["metrics"]["port"] == 8080 and ports["metrics"]["targetPort"] == "metrics"
    pod_labels = rendered.webhook_deployment()["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


# --- The rendered BerthConfig

BERTH_WEBHOOK_FIELDS = {
    "gpuResources", "notebookSelectors", "exemptNamespaces", "gpuTaints", "gpuNodeLabel",
    "gpuTypeAnnotation", "gpuTypeLabel", "skipAnnotation", "doNotDisruptAnnotation",
    "protectGPUNotebooks", "keepOtherPodsOffGPUNodes",
}


def test_config_is_a_berth_config_with_own_namespace_exempt(rendered):
    cfg = rendered.berth_config()
    assert cfg["apiVersion"] == "berth.dev/v1alpha1" and cfg["kind"] == "BerthConfig"
    assert cfg.keys() == {"apiVersion", "kind", "webhook"}
    assert cfg["webhook"].keys() <= BERTH_WEBHOOK_FIELDS
    assert rendered.value_set.namespace in cfg["webhook"]["exemptNamespaces"]


def test_config_defaults_match_the_documented_config(render):
    assert render("defaults").berth_config()["webhook"] == {
        "gpuResources": ["nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-*"],
        "notebookSelectors": [
            {"matchLabels": {"component": "singleuser-server"}},
            {"matchExpressions": [{"key": "notebook-name", "operator": "Exists"}]},
        ],
        "exemptNamespaces": ["berth-system"],
        "gpuTaints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
        "gpuNodeLabel": {"key": "nvidia.com/gpu.present", "value": "true"},
        "gpuTypeAnnotation": "berth.dev/gpu-type",
        "gpuTypeLabel": "karpenter.k8s.aws/instance-gpu-name",
        "skipAnnotation": "berth.dev/skip",
        "doNotDisruptAnnotation": "karpenter.sh/do-not-disrupt",
        "protectGPUNotebooks": True,
        "keepOtherPodsOffGPUNodes": True,
    }


def test_config_passes_user_values_through(render):
    webhook = render("everything").berth_config()["webhook"]
    assert webhook["exemptNamespaces"] == ["airflow-system", "monitoring", "platform"]
    assert webhook["gpuResources"] == ["nvidia.com/gpu", "amd.com/gpu"]
    assert webhook["keepOtherPodsOffGPUNodes"] is False
    # Given the release namespace already, the chart does not repeat it.
    again = render("defaults", "--set", "config.webhook.exemptNamespaces={berth-system}")
    assert again.berth_config()["webhook"]["exemptNamespaces"] == ["berth-system"]
