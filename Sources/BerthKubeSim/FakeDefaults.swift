import BerthKube
import BerthModel

/// What the apiserver fills in a Pod on create that a client did not (k8s.io/kubernetes
/// pkg/apis/core/v1 defaults, and the admission plugins every cluster runs: ServiceAccount,
/// DefaultTolerationSeconds, Priority), and the status it starts with (phase Pending, the QoS class).
enum FakeDefaults {
    static func pod(_ pod: JSON) -> JSON {
        guard case .object(var top) = pod else { return pod }
        var spec = top["spec"]?.objectValue ?? [:]
        func setDefault(_ key: String, _ value: JSON) { if spec[key] == nil { spec[key] = value } }
        setDefault("restartPolicy", "Always")
        setDefault("terminationGracePeriodSeconds", 30)
        setDefault("dnsPolicy", "ClusterFirst")
        setDefault("securityContext", .object([:]))
        setDefault("schedulerName", "default-scheduler")
        setDefault("enableServiceLinks", true)
        setDefault("priority", 0)
        setDefault("preemptionPolicy", "PreemptLowerPriority")
        let account = spec["serviceAccountName"]?.stringValue ?? spec["serviceAccount"]?.stringValue ?? "default"
        spec["serviceAccountName"] = .string(account)
        spec["serviceAccount"] = .string(account)
        for key in ["containers", "initContainers"] {
            guard let containers = spec[key]?.arrayValue else { continue }
            spec[key] = .array(containers.map(container))
        }
        // DefaultTolerationSeconds: 300 s for not-ready and unreachable, unless the pod says otherwise.
        var tolerations = spec["tolerations"]?.arrayValue ?? []
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let covered = tolerations.contains { toleration in
                let effect = toleration["effect"]?.stringValue ?? ""
                let tolerationKey = toleration["key"]?.stringValue ?? ""
                return (tolerationKey == key || (tolerationKey.isEmpty && toleration["operator"]?.stringValue == "Exists"))
                    && (effect.isEmpty || effect == "NoExecute")
            }
            if !covered {
                tolerations.append(["key": .string(key), "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300])
            }
        }
        spec["tolerations"] = .array(tolerations)
        top["spec"] = .object(spec)
        var status = top["status"]?.objectValue ?? [:]
        if status["phase"] == nil { status["phase"] = "Pending" }
        status["qosClass"] = .string(qosClass(spec))
        top["status"] = .object(status)
        return .object(top)
    }

    private static func container(_ container: JSON) -> JSON {
        guard case .object(var object) = container else { return container }
        if object["terminationMessagePath"] == nil { object["terminationMessagePath"] = "/dev/termination-log" }
        if object["terminationMessagePolicy"] == nil { object["terminationMessagePolicy"] = "File" }
        if object["imagePullPolicy"] == nil {
            let image = object["image"]?.stringValue ?? ""
            let reference = image.split(separator: "@").first.map(String.init) ?? image
            let lastPart = reference.split(separator: "/").last.map(String.init) ?? reference
            let tag = lastPart.contains(":") ? String(lastPart.split(separator: ":").last ?? "") : ""
            object["imagePullPolicy"] = image.contains("@") ? "IfNotPresent" : (tag.isEmpty || tag == "latest" ? "Always" : "IfNotPresent")
        }
        var resources = object["resources"]?.objectValue ?? [:]
        // Limits without requests: the requests are the limits (SetDefaults_Pod).
        if let limits = resources["limits"]?.objectValue {
            var requests = resources["requests"]?.objectValue ?? [:]
            for member in limits where requests[member.key] == nil { requests[member.key] = member.value }
            resources["requests"] = .object(requests)
        }
        object["resources"] = .object(resources)
        if let ports = object["ports"]?.arrayValue {
            object["ports"] = .array(ports.map { port in
                guard case .object(var entry) = port else { return port }
                if entry["protocol"] == nil { entry["protocol"] = "TCP" }
                return .object(entry)
            })
        }
        return .object(object)
    }

    /// pkg/apis/core/v1/helper/qos: Guaranteed when every container limits cpu and memory and
    /// requests equal limits; BestEffort when none requests or limits either; else Burstable.
    static func qosClass(_ spec: JSONObject) -> String {
        let containers = (spec["containers"]?.arrayValue ?? []) + (spec["initContainers"]?.arrayValue ?? [])
        var any = false
        var guaranteed = !containers.isEmpty
        for container in containers {
            let requests = container["resources"]?["requests"]
            let limits = container["resources"]?["limits"]
            for resource in ["cpu", "memory"] {
                let request = requests?[resource].flatMap(quantity)
                let limit = limits?[resource].flatMap(quantity)
                if (request ?? 0) > 0 || (limit ?? 0) > 0 { any = true }
                if limit == nil || request != limit { guaranteed = false }
            }
        }
        if !any { return "BestEffort" }
        return guaranteed ? "Guaranteed" : "Burstable"
    }

    private static func quantity(_ value: JSON) -> Double? {
        guard let text = value.stringValue ?? value.intValue.map(String.init), let parsed = try? Quantity(parsing: text) else { return nil }
        return Double(parsed.milli)
    }
}

/// `fieldValidation=Strict` for what the fake knows the schema of: every object's top level and
/// metadata, and a Pod's spec and containers (k8s.io/api core/v1 field names). An unknown field
/// is a 400 with upstream's message; other kinds are checked at their top level only.
enum FakeValidation {
    static func unknownFields(_ body: JSON?, resource: KubeResource, strict: Bool) -> String? {
        guard strict, let body, case .object = body else { return nil }
        var unknown: [String] = []
        check(body, topLevel(resource), path: "", into: &unknown)
        check(body["metadata"], metadata, path: "metadata", into: &unknown)
        if resource == .pods {
            check(body["spec"], podSpec, path: "spec", into: &unknown)
            for key in ["containers", "initContainers"] {
                for (index, container) in (body["spec"]?[key]?.arrayValue ?? []).enumerated() {
                    check(container, self.container, path: "spec.\(key)[\(index)]", into: &unknown)
                }
            }
        }
        guard !unknown.isEmpty else { return nil }
        let list = unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", ")
        return "\(resource.kind) in version \"\(resource.version)\" cannot be handled as a \(resource.kind): strict decoding error: \(list)"
    }

    private static func check(_ object: JSON?, _ known: Set<String>?, path: String, into unknown: inout [String]) {
        guard let known, let members = object?.objectValue else { return }
        for member in members where !known.contains(member.key) {
            unknown.append(path.isEmpty ? member.key : "\(path).\(member.key)")
        }
    }

    private static func topLevel(_ resource: KubeResource) -> Set<String>? {
        switch resource.kind {
        case "Pod", "Node", "Namespace", "PersistentVolumeClaim", "PersistentVolume", "DaemonSet", "Lease", "PodDisruptionBudget":
            return ["apiVersion", "kind", "metadata", "spec", "status"]
        case "Event" where resource.group.isEmpty:
            return ["apiVersion", "kind", "metadata", "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
                    "count", "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance"]
        case "Event":
            return ["apiVersion", "kind", "metadata", "eventTime", "series", "reportingController", "reportingInstance", "action", "reason",
                    "regarding", "related", "note", "type", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"]
        default:
            return nil
        }
    }

    private static let metadata: Set<String> = [
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
        "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    ]

    private static let podSpec: Set<String> = [
        "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
        "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount", "automountServiceAccountToken",
        "nodeName", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname",
        "subdomain", "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig",
        "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints",
        "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims", "resources", "hostnameOverride",
    ]

    private static let container: Set<String> = [
        "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy", "restartPolicy",
        "restartPolicyRules", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
        "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
    ]
}
