"""The provisioner: off by default; when on, its Deployment, IRSA ServiceAccount, exactly the
RBAC it needs, and its config."""

from __future__ import annotations

import json

import pytest
import yaml

# (apiGroup, resource, verb) — the whole of what the provisioner may do cluster-wide.
# Each verb is one call Berth makes (Sources/BerthController/KubeCluster.swift, BerthKube's
# LeaderElector): informers list+watch pods and nodes; the launch intent is a merge patch on the
# pod, a pod left when a drain times out is deleted; node labels are a strategic merge patch and
# taints a JSON patch testing the list read (get + patch); drained nodes are deleted; evictions
# are created; Events are events.k8s.io/v1 creates;
# a pending notebook's PVC and PV are read once to learn its zone.
EXPECTED_CLUSTER_RULES = {
    *{("", "pods", v) for v in ("list", "watch", "patch", "delete")},
    ("", "pods/eviction", "create"),
    *{("", "nodes", v) for v in ("get", "list", "watch", "patch", "delete")},
    ("events.k8s.io", "events", "create"),
    *{("", r, "get") for r in ("persistentvolumeclaims", "persistentvolumes")},
}
EXPECTED_LEASE_RULES = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}


def flatten(rules: list[dict]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in rules:
        assert rule.keys() <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields {rule}"
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def test_provisioner_off_by_default(render):
    r = render("defaults")
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert r.all(kind) == [], kind
    assert [d["metadata"]["name"] for d in r.all("Deployment")] == ["berth"]


@pytest.mark.parametrize("name", ["provisioner", "everything"])
def test_provisioner_rbac_is_exactly_what_it_needs(render, name):
    r = render(name)
    ns, sa = r.value_set.namespace, f"{r.fullname}-provisioner"
    (cr,) = r.all("ClusterRole")
    (crb,) = r.all("ClusterRoleBinding")
    (role,) = r.all("Role")
    (rb,) = r.all("RoleBinding")
    assert flatten(cr["rules"]) == EXPECTED_CLUSTER_RULES
    assert flatten(role["rules"]) == EXPECTED_LEASE_RULES
    assert role["metadata"]["namespace"] == ns
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cr["metadata"]["name"]}
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    for binding in (crb, rb):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]


def test_provisioner_deployment(render):
    r = render("provisioner")
    dep = r.one_component("Deployment", "provisioner")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert dep["spec"]["replicas"] == 2
    assert c["args"][:3] == ["serve", "--webhook=false", "--provisioner=true"]
    assert "--config=/etc/berth/config/config.yaml" in c["args"]
    assert "--metrics-port=8080" in c["args"]
    assert not [a for a in c["args"] if a.startswith("--tls")]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 8080}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["AWS_REGION"]["value"] == "us-east-1"
    assert spec["serviceAccountName"] == f"{r.fullname}-provisioner"
    assert spec["automountServiceAccountToken"] is True
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 65532 and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["terminationGracePeriodSeconds"] > 25
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    pdb = r.one_component("PodDisruptionBudget", "provisioner")
    assert pdb["spec"]["minAvailable"] == 1
    svc = r.one("Service", f"{r.fullname}-provisioner")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("metrics", 8080)]


def test_provisioner_service_account_irsa(render):
    sa = render("provisioner").one("ServiceAccount", "berth-provisioner")
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/berth-provisioner"
    }
    # No role ARN, no annotation.
    assert "annotations" not in render("everything").one("ServiceAccount", "notebooks-berth-provisioner")["metadata"]


def test_provisioner_config(render):
    r = render("provisioner")
    cfg = r.berth_config("berth-provisioner-config")
    assert cfg["provisioner"] == {"clusterName": "data-platform", "emptyAfter": "2m", "pools": [
        {"name": "gpu", "limits": {"gpus": 8, "pricePerHour": 12.5}}]}
    assert cfg["webhook"] == r.berth_config()["webhook"]
    # The webhook's own config never carries the provisioner section.
    assert "provisioner" not in r.berth_config()


@pytest.mark.parametrize("name", ["provisioner", "everything"])
def test_rendered_provisioner_flags_and_config_are_accepted_by_berth(render, tmp_path, name):
    """The provisioner container's arguments parse (`berth serve ... --help` fails on an unknown
    flag) and its rendered config passes Berth's strict reader (`berth plan --config`)."""
    import subprocess

    from test_self_mutation import berth_binary

    binary = berth_binary()
    r = render(name)
    (deployment,) = [d for d in r.all("Deployment") if d["metadata"]["name"].endswith("-provisioner")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "serve" and "--webhook=false" in args and "--cloud=aws" in args
    flags = [a for a in args[1:] if not a.startswith("--config=")]
    proc = subprocess.run([binary, "serve", *flags, "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr

    config = tmp_path / "config.yaml"
    config.write_text(r.one("ConfigMap", f"{r.fullname}-provisioner-config")["data"]["config.yaml"])
    pod = tmp_path / "pod.yaml"
    pod.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nb", "namespace": "jhub", "labels": {"component": "singleuser-server"}},
        "spec": {"containers": [{"name": "nb", "image": "jupyter", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
    }))
    proc = subprocess.run([binary, "plan", "-f", str(pod), "--config", str(config), "-o", "json"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert [n["instanceType"] for n in plan["nodes"]] == ["g4dn.xlarge"]
