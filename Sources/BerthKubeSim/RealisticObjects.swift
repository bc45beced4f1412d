import BerthModel
import Foundation

/// Pods and Nodes as a real EKS cluster serves them, for memory and load measurements
/// (`make bench-kube-memory`): a pod of a Deployment with a sidecar, env, probes, mounts, a
/// projected service-account token, the defaults the apiserver fills, container statuses and the
/// managedFields of three field managers — about 7 KB of JSON, like the pods that took Berth's cache
/// to 71 KB each; a node with EKS's labels, its images list, nodeInfo and managedFields. Every
/// `index` gives a different object; the same index always the same one.
public enum RealisticObjects {
    public static func pod(_ index: Int, nodes: Int) -> JSON {
        let app = ["checkout", "search", "payments", "catalog", "jupyter", "etl-worker", "feature-store", "recommender"][index % 8]
        let hash = String(UInt32(truncatingIfNeeded: index &* 2_654_435_761), radix: 16)
        let name = "\(app)-\(hash.prefix(8))-\(String(index, radix: 36))"
        let namespace = "team-\(index % 40)"
        let node = "ip-10-\(index % nodes / 250)-\(index % nodes % 250)-\(index % 7).ec2.internal"
        let uid = uuid(index, salt: 1)
        let started = "2026-11-\(String(format: "%02d", 1 + index % 28))T\(String(format: "%02d", index % 24)):\(String(format: "%02d", index % 60)):07Z"
        var env: [JSON] = []
        for (key, value) in [("LOG_LEVEL", "info"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability:4317"),
                             ("OTEL_SERVICE_NAME", app), 
                             ("DATABASE_HOST", "\(app)-db.cluster-cu7x1lq2abcd.us-east-1.rds.amazonaws.com"), 
                             ("CACHE_URL", "redis://\(app)-cache.\(namespace).svc.cluster.local:6379/0"), 
                             ("GOMAXPROCS", "2")] {
            env.append(["name": .string(key), "value": .string(value)])
        }
        env.append(["name": "POD_NAME", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.name"]]])
        env.append(["name": "POD_IP", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "status.podIP"]]])
        env.append(["name": "DB_PASSWORD", "valueFrom": ["secretKeyRef": ["name": .string("\(app)-db"), "key": "password"]]])
        let probe: JSON = ["httpGet": ["path": "/healthz", "port": 8080, "scheme": "HTTP"], "initialDelaySeconds": 10, "timeoutSeconds": 1,
                           "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3]
        let mounts: JSON = [["name": "config", "mountPath": "/etc/app", "readOnly": true], ["name": "tmp", "mountPath": "/tmp"],
                            ["name": .string("kube-api-access-\(hash.prefix(5))"), "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true]]
        let main: JSON = [
            "name": .string(app), "image": .string("123456789012.dkr.ecr.us-east-1.amazonaws.com/\(app):v2.\(index % 30).\(index % 7)"),
            "ports": [["name": "http", "containerPort": 8080, "protocol": "TCP"], ["name": "metrics", "containerPort": 9090, "protocol": "TCP"]],
            "env": .array(env),
            "resources": ["limits": ["memory": "1Gi"], "requests": ["cpu": .string("\(250 + index % 4 * 250)m"), "memory": "512Mi"]],
            "volumeMounts": mounts, "livenessProbe": probe, "readinessProbe": probe,
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
            "securityContext": ["allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": ["drop": ["ALL"]]],
        ]
        let sidecar: JSON = [
            "name": "envoy", "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.6.0-prod",
            "ports": [["name": "envoy-admin", "containerPort": 9901, "protocol": "TCP"]],
            "env": [["name": "APPMESH_VIRTUAL_NODE_NAME", "value": .string("mesh/\(namespace)/virtualNode/\(app)")], ["name": "AWS_REGION", "value": "us-east-1"]],
            "resources": ["requests": ["cpu": "10m", "memory": "32Mi"]],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
        ]
        func containerStatus(_ container: String, image: String) -> JSON {
            ["name": .string(container), "ready": true, "restartCount": .number(String(index % 3)), "started": true,
             "image": .string(image), "imageID": .string("\(image.split(separator: ":").first ?? "")@sha256:\(uid.replacingOccurrences(of: "-", with: ""))\(hash)"),
             "containerID": .string("containerd://\(uid.replacingOccurrences(of: "-", with: ""))\(uid.replacingOccurrences(of: "-", with: ""))"),
             "state": ["running": ["startedAt": .string(started)]], "lastState": [:]]
        }
        let fieldsV1: JSON = [
            "f:metadata": ["f:generateName": [:], "f:labels": [".": [:], "f:app": [:], "f:pod-template-hash": [:], "f:team": [:]],
                           "f:ownerReferences": [".": [:], "k:{\"uid\":\"\(uuid(index, salt: 2))\"}": [:]]],
            "f:spec": ["f:containers": ["k:{\"name\":\"\(app)\"}": [".": [:], "f:env": [".": [:], "k:{\"name\":\"LOG_LEVEL\"}": [".": [:], "f:name": [:], "f:value": [:]]],
                                                                     "f:image": [:], "f:imagePullPolicy": [:], "f:livenessProbe": [".": [:], "f:httpGet": [".": [:], "f:path": [:]]],
                                                                     "f:name": [:], "f:ports": [".": [:]], "f:resources": [".": [:], "f:limits": [".": [:], "f:memory": [:]]]]],
                       "f:dnsPolicy": [:], "f:enableServiceLinks": [:], "f:restartPolicy": [:], "f:schedulerName": [:], "f:securityContext": [:],
                       "f:terminationGracePeriodSeconds": [:], "f:volumes": [".": [:], "k:{\"name\":\"config\"}": [".": [:], "f:configMap": [".": [:], "f:name": [:]]]]],
        ]
        let statusFields: JSON = ["f:status": ["f:conditions": ["k:{\"type\":\"Ready\"}": [".": [:], "f:lastProbeTime": [:], "f:status": [:], "f:type": [:]]],
                                               "f:containerStatuses": [:], "f:hostIP": [:], "f:phase": [:], "f:podIP": [:], "f:podIPs": [".": [:]], "f:startTime": [:]]]
        let managed: JSON = [
            ["manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": .string(started), "fieldsType": "FieldsV1", "fieldsV1": fieldsV1],
            ["manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": .string(started), "fieldsType": "FieldsV1", "fieldsV1": statusFields, "subresource": "status"],
            ["manager": "vpc-resource-controller", "operation": "Update", "apiVersion": "v1", "time": .string(started), "fieldsType": "FieldsV1",
             "fieldsV1": ["f:metadata": ["f:annotations": [".": [:], "f:vpc.amazonaws.com/pod-ips": [:]]]]],
        ]
        let ip = "10.\(index % 4).\(index / 250 % 250).\(index % 250)"
        let condition = { (type: String) -> JSON in ["type": .string(type), "status": "True", "lastProbeTime": nil, "lastTransitionTime": .string(started)] }
        return [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": [
                "name": .string(name), "generateName": .string("\(app)-\(hash.prefix(8))-"), "namespace": .string(namespace), "uid": .string(uid),
                "creationTimestamp": .string(started),
                "labels": ["app": .string(app), "pod-template-hash": .string(String(hash.prefix(8))), "team": .string(namespace),
                           "app.kubernetes.io/part-of": "shop"],
                "annotations": ["vpc.amazonaws.com/pod-ips": .string(ip), "prometheus.io/scrape": "true"],
                "ownerReferences": [["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string("\(app)-\(hash.prefix(8))"),
                                     "uid": .string(uuid(index, salt: 2)), "controller": true, "blockOwnerDeletion": true]],
                "managedFields": managed,
            ],
            "spec": [
                "volumes": [["name": "config", "configMap": ["name": .string("\(app)-config"), "defaultMode": 420]], ["name": "tmp", "emptyDir": [:]],
                            ["name": .string("kube-api-access-\(hash.prefix(5))"), "projected": ["defaultMode": 420, "sources": [
                                ["serviceAccountToken": ["expirationSeconds": 3607, "path": "token"]],
                                ["configMap": ["name": "kube-root-ca.crt", "items": [["key": "ca.crt", "path": "ca.crt"]]]],
                                ["downwardAPI": ["items": [["path": "namespace", "fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]]]],
                            ]]]],
                "containers": [main, sidecar],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "serviceAccountName": .string(app), "serviceAccount": .string(app), "nodeName": .string(node),
                "securityContext": ["fsGroup": 1000, "seccompProfile": ["type": "RuntimeDefault"]], "schedulerName": "default-scheduler",
                "tolerations": [["key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300],
                                ["key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300]],
                "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            ],
            "status": [
                "phase": "Running",
                "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
                "hostIP": .string("10.0.\(index % nodes / 250).\(index % nodes % 250)"), "podIP": .string(ip), "podIPs": [["ip": .string(ip)]], "startTime": .string(started),
                "containerStatuses": [containerStatus(app, image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/\(app):v2.\(index % 30).\(index % 7)"),
                                      containerStatus("envoy", image: "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.6.0-prod")],
                "qosClass": "Burstable",
            ],
        ]
    }

    public static func nodeName(_ index: Int) -> String { "ip-10-\(index / 250)-\(index % 250)-\(index % 7).ec2.internal" }

    public static func node(_ index: Int) -> JSON {
        let name = nodeName(index)
        let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][index % 3]
        let type = ["m6i.2xlarge", "m6i.4xlarge", "c6i.4xlarge", "r6i.2xlarge", "g5.xlarge"][index % 5]
        let instance = "i-0\(String(UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15, radix: 16).prefix(16))"
        var images: [JSON] = []
        for image in ["123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout", "123456789012.dkr.ecr.us-east-1.amazonaws.com/search",
                      "public.ecr.aws/appmesh/aws-appmesh-envoy", "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni",
                      "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy", "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/pause",
                      "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver", "quay.io/prometheus/node-exporter", "docker.io/fluent/fluent-bit",
                      "nvcr.io/nvidia/k8s-device-plugin", "registry.k8s.io/sig-storage/csi-node-driver-registrar", "quay.io/jupyter/pytorch-notebook"] {
            images.append(["names": [.string("\(image)@sha256:\(String(repeating: "5f1e", count: 16))"), .string("\(image):v1.\(index % 9)")],
                           "sizeBytes": .number(String(50_000_000 + index % 1000 * 1000))])
        }
        let now = "2026-11-30T12:00:00Z"
        func condition(_ type: String, _ status: String, _ reason: String, _ message: String) -> JSON {
            ["type": .string(type), "status": .string(status), "lastHeartbeatTime": .string(now), "lastTransitionTime": .string(now),
             "reason": .string(reason), "message": .string(message)]
        }
        return [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(name), "uid": .string(uuid(index, salt: 3)), "creationTimestamp": "2026-11-01T00:00:00Z",
                "labels": ["beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": .string(type), "beta.kubernetes.io/os": "linux",
                           "eks.amazonaws.com/capacityType": "ON_DEMAND", "eks.amazonaws.com/nodegroup": "general", "eks.amazonaws.com/nodegroup-image": "ami-0abcdef1234567890",
                           "failure-domain.beta.kubernetes.io/region": "us-east-1", "failure-domain.beta.kubernetes.io/zone": .string(zone),
                           "k8s.io/cloud-provider-aws": "0123456789abcdef0123456789abcdef", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": .string(name),
                           "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": .string(type), "topology.ebs.csi.aws.com/zone": .string(zone),
                           "topology.k8s.aws/zone-id": .string("use1-az\(index % 3 + 1)"), "topology.kubernetes.io/region": "us-east-1", "topology.kubernetes.io/zone": .string(zone)],
                "annotations": ["alpha.kubernetes.io/provided-node-ip": .string("10.0.\(index / 250).\(index % 250)"), "csi.volume.kubernetes.io/nodeid": .string("{\"ebs.csi.aws.com\":\"\(instance)\"}"),
                                "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"],
                "managedFields": [
                    ["manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": .string(now), "fieldsType": "FieldsV1",
                     "fieldsV1": ["f:metadata": ["f:annotations": [".": [:], "f:alpha.kubernetes.io/provided-node-ip": [:]], "f:labels": [".": [:], "f:kubernetes.io/hostname": [:]]],
                                  "f:spec": ["f:providerID": [:]]]],
                    ["manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": .string(now), "fieldsType": "FieldsV1", "subresource": "status",
                     "fieldsV1": ["f:status": ["f:allocatable": [:], "f:capacity": [:], "f:conditions": [:], "f:images": [:], "f:nodeInfo": [:]]]],
                ],
            ],
            "spec": ["providerID": .string("aws:///\(zone)/\(instance)")],
            "status": [
                "capacity": ["cpu": "8", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "32386544Ki", "pods": "58"],
                "allocatable": ["cpu": "7910m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "31369712Ki", "pods": "58"],
                "conditions": [condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                               condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                               condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                               condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
                "addresses": [["type": "InternalIP", "address": .string("10.0.\(index / 250).\(index % 250)")], ["type": "InternalDNS", "address": .string(name)],
                              ["type": "Hostname", "address": .string(name)]],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                "nodeInfo": ["machineID": .string(uuid(index, salt: 4).replacingOccurrences(of: "-", with: "")), "systemUUID": .string(uuid(index, salt: 5)),
                             "bootID": .string(uuid(index, salt: 6)), "kernelVersion": "6.1.115-126.197.amzn2023.x86_64", "osImage": "Amazon Linux 2023.6.20241212",
                             "containerRuntimeVersion": "containerd://1.7.23", "kubeletVersion": "v1.31.3-eks-59bf375", "kubeProxyVersion": "v1.31.3-eks-59bf375",
                             "operatingSystem": "linux", "architecture": "amd64"],
                "images": .array(images),
            ],
        ]
    }

    private static func uuid(_ index: Int, salt: UInt64) -> String {
        let value = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 &+ salt &* 0xBF58_476D_1CE4_E5B9
        let hex = String(value, radix: 16)
        let padded = String(repeating: "0", count: max(0, 16 - hex.count)) + hex
        return "\(padded.prefix(8))-\(padded.dropFirst(8).prefix(4))-4\(padded.dropFirst(12).prefix(3))-a\(padded.suffix(3))-\(padded.prefix(12))"
    }
}
