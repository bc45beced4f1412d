"""Warm GPU capacity: provisioner.warm rendered into Berth's config (which Berth's strict reader
accepts), and the pre-pull DaemonSet: absent unless warm capacity is on with images, shaped like
z2jh's continuous image puller, on Berth's nodes only, tolerating their taints, and never touched
by Berth's own webhook."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from chart_render import CHART, VALUE_SETS
from test_self_mutation import berth_binary

PULLER_LABEL = "berth.dev/image-puller"


def puller(r):
    return [d for d in r.all("DaemonSet") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "image-puller"]


def provisioner_config(r) -> dict:
    return r.berth_config(f"{r.fullname}-provisioner-config")["provisioner"]


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if n != "warm"])
def test_no_puller_and_no_warm_section_by_default(render, name):
    r = render(name)
    assert puller(r) == []
    if r.all("ConfigMap") and any(c["metadata"]["name"].endswith("-provisioner-config") for c in r.all("ConfigMap")):
        assert "warm" not in provisioner_config(r)


def test_warm_config_is_rendered_for_berth(render):
    r = render("warm")
    assert provisioner_config(r)["warm"] == {
        "mode": "schedule",
        "targetTimeToGPU": "30s",
        "volumeSizeGiB": 150,
        "imagePuller": True,
        "schedules": [
            {"days": "Mon-Fri", "from": "08:30", "to": "19:00", "timeZone": "Asia/Seoul", "running": 2, "stopped": 4,
             "instanceType": "g4dn.xlarge", "pool": "gpu"},
            {"days": "Fri-Mon", "from": "22:00", "to": "06:00", "timeZone": "Asia/Seoul", "stopped": 1,
             "instanceType": "g4dn.12xlarge", "pool": "big"},
        ],
    }
    # The webhook's own config never carries it.
    assert "provisioner" not in r.berth_config()


def test_rendered_warm_config_is_read_by_berth_strictly(render, tmp_path):
    """`berth plan --config` reads the rendered config with Berth's strict reader, times and
    time zones included, and checks the schedules' instance types against its catalog."""
    r = render("warm")
    config = tmp_path / "config.yaml"
    config.write_text(r.one("ConfigMap", f"{r.fullname}-provisioner-config")["data"]["config.yaml"])
    pod = tmp_path / "pod.yaml"
    pod.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nb", "namespace": "jhub", "labels": {"component": "singleuser-server"}},
        "spec": {"containers": [{"name": "nb", "image": "jupyter", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
    }))
    proc = subprocess.run([berth_binary(), "plan", "-f", str(pod), "--config", str(config), "-o", "json"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert [n["instanceType"] for n in json.loads(proc.stdout)["nodes"]] == ["g4dn.xlarge"]
    # The same file with a schedule's instance type the pool cannot launch is refused, by name.
    document = yaml.safe_load(config.read_text())
    document["provisioner"]["warm"]["schedules"][1]["instanceType"] = "g4dn.xlarge"
    config.write_text(yaml.safe_dump(document))
    proc = subprocess.run([berth_binary(), "plan", "-f", str(pod), "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "provisioner.warm.schedules[1].instanceType: \"g4dn.xlarge\": pool \"big\" does not launch it" in proc.stderr


def test_puller_daemonset(render):
    r = render("warm")
    (ds,) = puller(r)
    assert ds["metadata"]["name"] == "seoul-berth-image-puller"
    assert ds["metadata"]["namespace"] == "gpu-system"
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}}
    template = ds["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels[PULLER_LABEL] == "true"
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spec = template["spec"]
    # One init container per image, each a no-op that makes the kubelet pull it.
    images = ["quay.io/jupyter/pytorch-notebook:cuda12-2024-12-02",
              "registry.example.com/ml/notebook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
    assert [c["image"] for c in spec["initContainers"]] == images
    for c in spec["initContainers"]:
        assert c["command"] == ["/bin/sh", "-c", "echo Pulling complete"]
        assert c["imagePullPolicy"] == "IfNotPresent"
    (pause,) = spec["containers"]
    assert pause["image"] == "registry.k8s.io/pause:3.10"
    for c in spec["initContainers"] + spec["containers"]:
        assert c["resources"]["requests"] == {"cpu": "1m", "memory": "8Mi"}
    assert spec["imagePullSecrets"] == [{"name": "notebook-registry"}]
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["automountServiceAccountToken"] is False
    # Berth's nodes only: they carry berth.dev/pool.
    assert spec["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "berth.dev/pool", "operator": "Exists"}]}]}}}
    # The GPU taint (config.webhook.gpuTaints and the pools'), the stopped tier's, and the big pool's own; once each.
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "berth.dev/warm", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "team", "operator": "Exists", "effect": "NoExecute"},
    ]


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    """Kubernetes' toleration matching (v1 helper ToleratesTaint), for the taints the test names."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("key") and t["key"] != taint["key"]:
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def test_puller_tolerates_every_taint_of_berths_nodes(render):
    (ds,) = puller(render("warm"))
    tolerations = ds["spec"]["template"]["spec"]["tolerations"]
    for taint in (
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
        {"key": "berth.dev/warm", "value": "stopped", "effect": "NoSchedule"},
        {"key": "team", "value": "research", "effect": "NoExecute"},
    ):
        assert tolerates(tolerations, taint), taint
    assert not tolerates(tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})


def test_puller_needs_warm_capacity_images_and_the_provisioner(helm):
    warm = VALUE_SETS["warm"]
    assert puller(helm.template(warm, "--set", "provisioner.warm.images=null")) == []
    assert puller(helm.template(warm, "--set", "provisioner.enabled=false")) == []
    assert puller(helm.template(warm, "--set", "provisioner.warm.mode=off")) == []
    # No images: warm capacity without the puller, and Berth is told so.
    r = helm.template(warm, "--set", "provisioner.warm.images=null")
    assert provisioner_config(r)["warm"]["imagePuller"] is False
    # auto: no schedules; the puller runs.
    r = helm.template(warm, "--set", "provisioner.warm.mode=auto", "--set", "provisioner.warm.schedules=null",
                      "--set", "provisioner.warm.targetTimeToGPU=10s")
    assert provisioner_config(r)["warm"] == {"mode": "auto", "targetTimeToGPU": "10s", "volumeSizeGiB": 150, "imagePuller": True}
    assert len(puller(r)) == 1


def test_unquoted_off_is_off(helm, tmp_path):
    """`mode: off` unquoted is YAML's false: read as off, not refused, and nothing is rendered."""
    values = tmp_path / "off.yaml"
    values.write_text("provisioner:\n  enabled: true\n  warm:\n    mode: off\n    images: [jupyter/base-notebook]\n")
    r = helm.template(VALUE_SETS["defaults"], "--values", str(values))
    assert puller(r) == []
    assert "warm" not in provisioner_config(r)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "provisioner.warm.mode=always"], "/provisioner/warm/mode'"),
        (["--set", "provisioner.warm.mode=true"], "/provisioner/warm/mode'"),
        (["--set", "provisioner.warm.imagePuler.pauseImage=x"], "imagePuler"),
        (["--set", "provisioner.warm.images=jupyter"], "/provisioner/warm/images'"),
        (["--set", "provisioner.warm.volumeSizeGiB=0"], "/provisioner/warm/volumeSizeGiB'"),
        (["--set", "provisioner.warm.targetTimeToGPU=30 seconds"], "/provisioner/warm/targetTimeToGPU'"),
        (["--set-json", 'provisioner.warm.schedules=[{"days":"Mon","from":"8:30","to":"19:00","running":1,"instanceType":"g4dn.xlarge"}]'],
         "/provisioner/warm/schedules/0/from'"),
        # 24:00 ends a window; it does not start one (Berth refuses it too).
        (["--set-json", 'provisioner.warm.schedules=[{"days":"Mon","from":"24:00","to":"08:00","running":1,"instanceType":"g4dn.xlarge"}]'],
         "/provisioner/warm/schedules/0/from'"),
        (["--set-json", 'provisioner.warm.schedules=[{"days":"Mon","from":"08:30","to":"19:00","runing":1,"instanceType":"g4dn.xlarge"}]'],
         "runing"),
        (["--set-json", 'provisioner.config={"warm":{"mode":"auto"}}'], "provisioner.config.warm: set warm capacity in provisioner.warm"),
    ],
)
def test_bad_warm_values_fail_naming_the_key(helm, args, message):
    proc = helm.run("template", "berth", str(CHART), "--set", "provisioner.enabled=true", *args)
    assert proc.returncode != 0, f"helm template accepted {args}"
    assert message in proc.stderr, proc.stderr


def mutate(tmp_path, config: str, obj: dict) -> dict:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config)
    f = tmp_path / "object.yaml"
    f.write_text(yaml.safe_dump(obj))
    proc = subprocess.run([berth_binary(), "mutate", "-f", str(f), "--config", str(config_file), "-o", "yaml"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_berths_webhook_leaves_the_puller_alone(render, tmp_path):
    """Berth keeps non-GPU pods off GPU nodes; the puller must land there. The DaemonSet and its
    pods, as the DaemonSet controller creates them, go through `berth mutate` with the chart's
    webhook config unchanged: in the release namespace (exempt) and, to check that DaemonSet
    ownership alone exempts them, in a namespace that is not."""
    r = render("warm")
    config = r.one("ConfigMap", f"{r.fullname}-config")["data"]["config.yaml"]
    (ds,) = puller(r)
    assert mutate(tmp_path, config, ds) == ds
    template = ds["spec"]["template"]
    for namespace in (r.value_set.namespace, "default"):
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {**template["metadata"], "name": "seoul-berth-image-puller-x2x7q", "namespace": namespace,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds["metadata"]["name"],
                                              "uid": "5c3c1a4e-8d1f-4a51-9d07-3f1e0f1c2b3a", "controller": True, "blockOwnerDeletion": True}]},
            "spec": template["spec"],
        }
        assert mutate(tmp_path, config, pod) == pod, namespace
    # The same pod with no owner, outside the release namespace, is kept off GPU nodes: the
    # exemption above is what lets it run there.
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {**template["metadata"], "name": "orphan", "namespace": "default"},
              "spec": template["spec"]}
    assert mutate(tmp_path, config, orphan) != orphan
