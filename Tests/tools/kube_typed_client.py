"""Typed calls of the official Python Kubernetes client against an apiserver (the embedded one in
Berth's tests). Every answer is deserialised into the client's models, which refuse objects missing
required fields; a failure exits non-zero with the exception. Prints what it saw, one fact a line,
for the Swift test to check. Usage: kube_typed_client.py KUBECONFIG"""
import sys

from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
events = client.EventsV1Api()
coordination = client.CoordinationV1Api()
version = client.VersionApi().get_code()
print("version", version.git_version)
nodes = core.list_node()
for node in nodes.items:
    info = node.status.node_info
    print("node", node.metadata.name, info.kubelet_version, info.os_image, info.container_runtime_version)
pods = core.list_pod_for_all_namespaces(limit=1)
print("pods page", len(pods.items), "continue" if pods.metadata._continue else "last")
created = core.create_namespaced_pod("default", client.V1Pod(
    metadata=client.V1ObjectMeta(name="typed-client"),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36",
                                                        resources=client.V1ResourceRequirements(limits={"cpu": "1", "memory": "1Gi"}))])))
print("created", created.metadata.name, created.spec.restart_policy, created.spec.scheduler_name, created.spec.dns_policy,
      created.spec.termination_grace_period_seconds, created.status.qos_class)
dry = core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="typed-dry"),
                                                         spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])),
                                 dry_run="All")
print("dry run", dry.metadata.name, dry.spec.containers[0].image_pull_policy)
try:
    core.read_namespaced_pod("typed-dry", "default")
    print("dry run persisted")
    sys.exit(1)
except client.ApiException as error:
    print("dry run not persisted", error.status)
core_events = core.list_event_for_all_namespaces()
print("core events", len(core_events.items), sorted({e.reason for e in core_events.items}))
v1_events = events.list_event_for_all_namespaces()
print("events.k8s.io events", len(v1_events.items))
leases = coordination.list_lease_for_all_namespaces()
print("leases", len(leases.items))
core.delete_namespaced_pod("typed-client", "default")
try:
    client.CustomObjectsApi().list_cluster_custom_object("example.com", "v1", "widgets")
    print("unknown resource served")
    sys.exit(1)
except client.ApiException as error:
    print("unknown resource", error.status)
