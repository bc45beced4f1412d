import BerthKube
import BerthModel
import BerthNet
import Foundation

/// Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): what `kubectl
/// get` shows. The columns are upstream's for the kinds Berth's cluster holds (after
/// k8s.io/kubernetes pkg/printers/internalversion: pods, nodes, events, leases, namespaces,
/// PodDisruptionBudgets), `Name` and `Age` for the others; columns of priority 1 are the ones
/// `-o wide` adds. Each row carries the object's metadata (or the object, or nothing, as
/// `includeObject` asks), from which kubectl takes the namespace it prints with `-A`.
enum FakeTables {
    /// Whether the Accept header asks for a meta.k8s.io Table.
    static func wanted(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { part in
            let parameters = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            return parameters.contains("as=Table") && parameters.contains("g=meta.k8s.io")
        }
    }

    struct Column {
        var name: String
        var type = "string"
        var format = ""
        var priority = 0
        var description: String
    }

    static func response(_ table: JSON) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["Content-Type": "application/json;as=Table;g=meta.k8s.io;v=v1"], body: JSONWriter.bytes(table))
    }

    static func table(_ resource: KubeResource, _ objects: [JSON], include: String, resourceVersion: String, continueToken: String?,
                      now: Date = Date()) -> JSON {
        let (columns, cells) = printer(resource)
        var rows: [JSON] = []
        for object in objects {
            var row: JSONObject = ["cells": .array(cells(object, now))]
            switch include {
            case "None": break
            case "Object": row["object"] = object
            default:
                row["object"] = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"] ?? .object([:])]
            }
            rows.append(.object(row))
        }
        var metadata: JSONObject = ["resourceVersion": .string(resourceVersion)]
        if let continueToken, !continueToken.isEmpty { metadata["continue"] = .string(continueToken) }
        let definitions: [JSON] = columns.map {
            ["name": .string($0.name), "type": .string($0.type), "format": .string($0.format), "description": .string($0.description),
             "priority": .number($0.priority)]
        }
        return ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": .object(metadata), "columnDefinitions": .array(definitions),
                "rows": .array(rows)]
    }

    private static let nameColumn = Column(name: "Name", format: "name", description: "Name must be unique within a namespace.")
    private static let ageColumn = Column(name: "Age", description: "CreationTimestamp is a timestamp representing the server time when this object was created.")

    private static func printer(_ resource: KubeResource) -> ([Column], (JSON, Date) -> [JSON]) {
        switch (resource.group, resource.plural) {
        case ("", "pods"):
            return ([nameColumn,
                     Column(name: "Ready", description: "The aggregate readiness state of this pod for accepting traffic."),
                     Column(name: "Status", description: "The aggregate status of the containers in this pod."),
                     Column(name: "Restarts", description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                     ageColumn,
                     Column(name: "IP", priority: 1, description: "IP address allocated to the pod. Routable at least within the cluster."),
                     Column(name: "Node", priority: 1, description: "NodeName is a request to schedule this pod onto a specific node."),
                     Column(name: "Nominated Node", priority: 1, description: "nominatedNodeName is set only when this pod preempts other pods on the node."),
                     Column(name: "Readiness Gates", priority: 1, description: "If specified, all readiness gates will be evaluated for pod readiness.")],
                    { pod, now in podCells(pod, now) })
        case ("", "nodes"):
            return ([nameColumn,
                     Column(name: "Status", description: "The status of the node"),
                     Column(name: "Roles", description: "The roles of the node"),
                     ageColumn,
                     Column(name: "Version", description: "Kubelet Version reported by the node."),
                     Column(name: "Internal-IP", priority: 1, description: "List of addresses reachable to the node. Queried from cloud provider, if available."),
                     Column(name: "External-IP", priority: 1, description: "List of addresses reachable to the node. Queried from cloud provider, if available."),
                     Column(name: "OS-Image", priority: 1, description: "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
                     Column(name: "Kernel-Version", priority: 1, description: "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
                     Column(name: "Container-Runtime", priority: 1, description: "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).")],
                    { node, now in nodeCells(node, now) })
        case ("", "events"), ("events.k8s.io", "events"):
            return ([Column(name: "Last Seen", description: "Time when this Event was last observed."),
                     Column(name: "Type", description: "Type of this event (Normal, Warning), new types could be added in the future."),
                     Column(name: "Reason", description: "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                     Column(name: "Object", description: "The object that this event is about."),
                     Column(name: "Subobject", priority: 1, description: "The subobject of the object that this event is about."),
                     Column(name: "Source", priority: 1, description: "The component reporting this event."),
                     Column(name: "Message", description: "A human-readable description of the status of this operation."),
                     Column(name: "First Seen", priority: 1, description: "The time at which the event was first recorded."),
                     Column(name: "Count", priority: 1, description: "The number of times this event has occurred."),
                     Column(name: "Name", format: "name", priority: 1, description: "Name must be unique within a namespace.")],
                    { event, now in eventCells(resource.group.isEmpty ? event : FakeEvents.toCore(event), now) })
        case ("coordination.k8s.io", "leases"):
            return ([nameColumn, Column(name: "Holder", description: "holderIdentity contains the identity of the holder of a current lease."), ageColumn],
                    { lease, now in [name(lease), .string(lease["spec"]?["holderIdentity"]?.stringValue ?? ""), .string(age(lease, now))] })
        case ("", "namespaces"):
            return ([nameColumn, Column(name: "Status", description: "The status of the namespace"), ageColumn],
                    { namespace, now in [name(namespace), .string(namespace["status"]?["phase"]?.stringValue ?? "Active"), .string(age(namespace, now))] })
        case ("policy", "poddisruptionbudgets"):
            return ([nameColumn,
                     Column(name: "Min Available", description: "The minimum number of pods that must be available."),
                     Column(name: "Max Unavailable", description: "The maximum number of pods that may be unavailable."),
                     Column(name: "Allowed Disruptions", type: "integer", description: "Calculated number of pods that may be disrupted at this time."),
                     ageColumn],
                    { pdb, now in [name(pdb), .string(text(pdb["spec"]?["minAvailable"]) ?? "N/A"), .string(text(pdb["spec"]?["maxUnavailable"]) ?? "N/A"),
                                   .number(pdb["status"]?["disruptionsAllowed"]?.intValue ?? 0), .string(age(pdb, now))] })
        default:
            return ([nameColumn, ageColumn], { object, now in [name(object), .string(age(object, now))] })
        }
    }

    private static func name(_ object: JSON) -> JSON { .string(object["metadata"]?["name"]?.stringValue ?? "") }

    private static func text(_ value: JSON?) -> String? {
        switch value {
        case .string(let text)?: text
        case .number(let number)?: number
        default: nil
        }
    }

    private static func age(_ object: JSON, _ now: Date) -> String {
        guard let created = object["metadata"]?["creationTimestamp"]?.stringValue.flatMap(RFC3339.parse) else { return "<unknown>" }
        return humanDuration(now.timeIntervalSince(created))
    }

    /// The apimachinery duration.HumanDuration rules: seconds below 2 minutes, minutes and
    /// seconds below 10 minutes, minutes below 3 hours, hours and minutes below 8 hours, hours
    /// below 2 days, days and hours below 8 days, days below 2 years, then years and days.
    static func humanDuration(_ interval: TimeInterval) -> String {
        if interval < -1 { return "<invalid>" }
        let seconds = Int(max(0, interval))
        let minutes = seconds / 60, hours = seconds / 3600, days = hours / 24, years = days / 365
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<600: return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s"
        case ..<(3 * 3600): return "\(minutes)m"
        case ..<(8 * 3600): return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m"
        case ..<(48 * 3600): return "\(hours)h"
        case ..<(8 * 86400): return hours % 24 == 0 ? "\(days)d" : "\(days)d\(hours % 24)h"
        case ..<(2 * 365 * 86400): return "\(days)d"
        case ..<(8 * 365 * 86400): return days % 365 == 0 ? "\(years)y" : "\(years)y\(days % 365)d"
        default: return "\(years)y"
        }
    }

    private static func podCells(_ pod: JSON, _ now: Date) -> [JSON] {
        let containers = pod["spec"]?["containers"]?.arrayValue ?? []
        let statuses = pod["status"]?["containerStatuses"]?.arrayValue ?? []
        let podReady = (pod["status"]?["conditions"]?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
        // Without container statuses (the fake kubelet keeps none) a Ready pod counts all its containers ready.
        let ready = statuses.isEmpty ? (podReady ? containers.count : 0) : statuses.filter { $0["ready"]?.boolValue == true }.count
        var reason = pod["status"]?["reason"]?.stringValue ?? pod["status"]?["phase"]?.stringValue ?? "Unknown"
        for status in statuses {
            if let waiting = status["state"]?["waiting"]?["reason"]?.stringValue, !waiting.isEmpty { reason = waiting }
            else if let terminated = status["state"]?["terminated"]?["reason"]?.stringValue, !terminated.isEmpty { reason = terminated }
        }
        if pod["metadata"]?["deletionTimestamp"] != nil { reason = pod["status"]?["reason"]?.stringValue == "NodeLost" ? "Unknown" : "Terminating" }
        let restarts = statuses.reduce(0) { $0 + ($1["restartCount"]?.intValue ?? 0) }
        let gates = pod["spec"]?["readinessGates"]?.arrayValue ?? []
        return [name(pod), .string("\(ready)/\(containers.count)"), .string(reason), .string(String(restarts)), .string(age(pod, now)),
                .string(nonEmpty(pod["status"]?["podIP"]?.stringValue)), .string(nonEmpty(pod["spec"]?["nodeName"]?.stringValue)),
                .string(nonEmpty(pod["status"]?["nominatedNodeName"]?.stringValue)),
                .string(gates.isEmpty ? "<none>" : "0/\(gates.count)")]
    }

    private static func nodeCells(_ node: JSON, _ now: Date) -> [JSON] {
        let conditions = node["status"]?["conditions"]?.arrayValue ?? []
        var status = [String]()
        if let ready = conditions.first(where: { $0["type"] == "Ready" }) {
            status.append(ready["status"]?.stringValue == "True" ? "Ready" : "NotReady")
        } else {
            status.append("Unknown")
        }
        if node["spec"]?["unschedulable"]?.boolValue == true { status.append("SchedulingDisabled") }
        var roles: [String] = []
        for member in node["metadata"]?["labels"]?.objectValue ?? [:] {
            if member.key.hasPrefix("node-role.kubernetes.io/") {
                let role = String(member.key.dropFirst("node-role.kubernetes.io/".count))
                if !role.isEmpty { roles.append(role) }
            } else if member.key == "kubernetes.io/role", let role = member.value.stringValue, !role.isEmpty {
                roles.append(role)
            }
        }
        let addresses = node["status"]?["addresses"]?.arrayValue ?? []
        func address(_ type: String) -> String { nonEmpty(addresses.first { $0["type"]?.stringValue == type }?["address"]?.stringValue) }
        let info = node["status"]?["nodeInfo"]
        return [name(node), .string(status.joined(separator: ",")), .string(roles.isEmpty ? "<none>" : roles.sorted().joined(separator: ",")),
                .string(age(node, now)), .string(info?["kubeletVersion"]?.stringValue ?? ""), .string(address("InternalIP")),
                .string(address("ExternalIP")), .string(nonEmpty(info?["osImage"]?.stringValue, "<unknown>")),
                .string(nonEmpty(info?["kernelVersion"]?.stringValue, "<unknown>")),
                .string(nonEmpty(info?["containerRuntimeVersion"]?.stringValue, "<unknown>"))]
    }

    private static func eventCells(_ event: JSON, _ now: Date) -> [JSON] {
        func date(_ field: String) -> Date? { event[field]?.stringValue.flatMap(RFC3339.parse) }
        let created = event["metadata"]?["creationTimestamp"]?.stringValue.flatMap(RFC3339.parse)
        let first = date("firstTimestamp") ?? date("eventTime") ?? created
        let last = event["series"]?["lastObservedTime"]?.stringValue.flatMap(RFC3339.parse) ?? date("lastTimestamp") ?? date("eventTime") ?? first
        let involved = event["involvedObject"]
        let object = "\(involved?["kind"]?.stringValue?.lowercased() ?? "")/\(involved?["name"]?.stringValue ?? "")"
        var source = event["source"]?["component"]?.stringValue ?? ""
        if source.isEmpty { source = event["reportingComponent"]?.stringValue ?? "" }
        if let host = event["source"]?["host"]?.stringValue, !host.isEmpty { source += ", \(host)" }
        let count = event["series"]?["count"]?.intValue ?? event["count"]?.intValue ?? 1
        return [.string(last.map { humanDuration(now.timeIntervalSince($0)) } ?? "<unknown>"), .string(event["type"]?.stringValue ?? ""),
                .string(event["reason"]?.stringValue ?? ""), .string(object), .string(involved?["fieldPath"]?.stringValue ?? ""),
                .string(source), .string(event["message"]?.stringValue ?? ""),
                .string(first.map { humanDuration(now.timeIntervalSince($0)) } ?? "<unknown>"), .number(count), name(event)]
    }

    private static func nonEmpty(_ text: String?, _ fallback: String = "<none>") -> String {
        guard let text, !text.isEmpty else { return fallback }
        return text
    }
}
