import BerthAdmission
import BerthModel

/// Everything the scheduler needs from one pending pod, read once from its JSON (as the webhook
/// left it). The constraint part (`constraints`) is shared by pods of one workload and carries its
/// hash, so grouping thousands of pods costs one integer hash each.
public struct PodRequirements: Sendable {
    public var namespace: String
    public var name: String
    public var requests: Resources
    /// The one GPU resource the pod asks for (`nvidia.com/gpu`), if any.
    public var gpuResource: String?
    public var isNotebook: Bool
    public var constraints: PodConstraints
    /// Requested resources no instance type offers (a second GPU resource, hugepages, ...).
    public var unsupportedResources: [String]
    /// The pod's labels (what other pods' affinity terms and spread constraints select on).
    public var labels: [String: String]
    /// Pod affinity and anti-affinity, topology spread, host ports: empty for most pods.
    public var interPod: InterPodConstraints

    public var id: String { "\(namespace)/\(name)" }

    public init(
        namespace: String, name: String, requests: Resources, gpuResource: String? = nil, isNotebook: Bool = false,
        constraints: PodConstraints = PodConstraints(), unsupportedResources: [String] = [], labels: [String: String] = [:],
        interPod: InterPodConstraints = InterPodConstraints()
    ) {
        self.namespace = namespace
        self.name = name
        var requests = requests
        requests.pods = 1
        self.requests = requests
        self.gpuResource = gpuResource
        self.isNotebook = isNotebook
        self.constraints = constraints
        self.unsupportedResources = unsupportedResources
        self.labels = labels
        self.interPod = interPod
    }

    /// Reads a Pod. `volumeZones` are the zones of its bound PersistentVolumes' node affinity
    /// (the caller reads volumes from the API); `nil` when it has none.
    public init(pod: JSON, config: WebhookConfig = WebhookConfig(), volumeZones: [String]? = nil) throws(SchedulingError) {
        let metadata = pod["metadata"]
        let namespace = metadata?["namespace"]?.stringValue ?? "default"
        let name = metadata?["name"]?.stringValue ?? metadata?["generateName"]?.stringValue ?? "<unnamed>"
        let id = "\(namespace)/\(name)"
        func fail(_ field: String, _ message: String) -> SchedulingError { .invalidPod(pod: id, field: field, message: message) }
        let spec = pod["spec"]

        // Kubernetes' effective request: max(sum of app containers + sidecars, each init container
        // + the sidecars started before it), plus the pod overhead. A missing request defaults to
        // the limit (API defaulting), which is how extended resources are always given.
        var named: [String: Quantity] = [:]
        var initPeak: [String: Quantity] = [:]
        var sidecars: [String: Quantity] = [:]
        func containerRequests(_ container: JSON, field: String) throws(SchedulingError) -> [String: Quantity] {
            var result: [String: Quantity] = [:]
            let resources = container["resources"]
            for section in ["limits", "requests"] {
                guard let value = resources?[section], !value.isNull else { continue }
                guard let object = value.objectValue else { throw fail("\(field).resources.\(section)", "expected an object, found \(value.typeName)") }
                for member in object {
                    let text: String
                    switch member.value {
                    case let .string(string): text = string
                    case let .number(number): text = number
                    default: throw fail("\(field).resources.\(section).\(member.key)", "expected a quantity, found \(member.value.typeName)")
                    }
                    let quantity: Quantity
                    do { quantity = try Quantity.parse(text) } catch { throw fail("\(field).resources.\(section).\(member.key)", error.description) }
                    guard quantity.milli >= 0 else { throw fail("\(field).resources.\(section).\(member.key)", "must not be negative, found \"\(text)\"") }
                    result[member.key] = quantity  // requests (read second) win over limits
                }
            }
            return result
        }
        func list(_ key: String) throws(SchedulingError) -> [JSON] {
            guard let value = spec?[key], !value.isNull else { return [] }
            guard let array = value.arrayValue else { throw fail("spec.\(key)", "expected a list, found \(value.typeName)") }
            return array
        }
        for (index, container) in try list("initContainers").enumerated() {
            let requests = try containerRequests(container, field: "spec.initContainers[\(index)]")
            if container["restartPolicy"]?.stringValue == "Always" {
                for (key, value) in requests { sidecars[key, default: Quantity(0)].milli += value.milli }
            } else {
                for (key, value) in requests {
                    let total = value.milli + (sidecars[key]?.milli ?? 0)
                    if total > (initPeak[key]?.milli ?? 0) { initPeak[key] = Quantity(milli: total) }
                }
            }
        }
        for (index, container) in try list("containers").enumerated() {
            for (key, value) in try containerRequests(container, field: "spec.containers[\(index)]") {
                named[key, default: Quantity(0)].milli += value.milli
            }
        }
        for (key, value) in sidecars { named[key, default: Quantity(0)].milli += value.milli }
        for (key, value) in initPeak where value.milli > (named[key]?.milli ?? 0) { named[key] = value }
        if let overhead = spec?["overhead"]?.objectValue {
            for member in overhead {
                guard let text = member.value.stringValue ?? { if case let .number(n) = member.value { return n } else { return nil } }() else { continue }
                do { named[member.key, default: Quantity(0)].milli += try Quantity.parse(text).milli } catch { throw fail("spec.overhead.\(member.key)", error.description) }
            }
        }

        var requests = Resources()
        var gpuResource: String?
        var unsupported: [String] = []
        for (key, quantity) in named.sorted(by: { $0.key < $1.key }) where quantity.milli > 0 {
            switch key {
            case "cpu": requests.cpuMilli = quantity.milli
            case "memory": requests.memory = quantity.value
            case "ephemeral-storage": requests.ephemeralStorage = quantity.value
            default:
                if config.gpuResources.contains(where: { $0.matches(key) }) && gpuResource == nil {
                    gpuResource = key
                    requests.gpus = quantity.value
                } else {
                    unsupported.append(key)
                }
            }
        }

        var tolerations: [Toleration] = []
        for toleration in try list("tolerations") { tolerations.append(Toleration(json: toleration)) }
        var nodeSelector: [LabelRequirement] = []
        if let selector = spec?["nodeSelector"], !selector.isNull {
            guard let object = selector.objectValue else { throw fail("spec.nodeSelector", "expected an object, found \(selector.typeName)") }
            for member in object {
                guard let value = member.value.stringValue else { throw fail("spec.nodeSelector.\(member.key)", "expected a string, found \(member.value.typeName)") }
                nodeSelector.append(LabelRequirement(key: member.key, operator: .in, values: [value]))
            }
        }
        var terms: [[LabelRequirement]] = []
        let required = spec?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]
        if let required, !required.isNull {
            let field = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            guard let array = required["nodeSelectorTerms"]?.arrayValue else { throw fail(field, "expected a list") }
            for (index, term) in array.enumerated() {
                // A term naming nodes by field (DaemonSet-style) cannot match a node not yet
                // launched; an empty term matches no node at all (upstream semantics).
                let fields = term["matchFields"]?.arrayValue ?? []
                let expressions = term["matchExpressions"]?.arrayValue ?? []
                if !fields.isEmpty || expressions.isEmpty {
                    terms.append([LabelRequirement(key: "berth.dev/unsatisfiable-term", operator: .exists)])
                    continue
                }
                var requirements: [LabelRequirement] = []
                for (position, expression) in expressions.enumerated() {
                    guard let requirement = LabelRequirement(json: expression) else {
                        throw fail("\(field)[\(index)].matchExpressions[\(position)]", "expected key, a known operator and values")
                    }
                    requirements.append(requirement)
                }
                terms.append(requirements)
            }
        }
        var labels: [String: String] = [:]
        for member in metadata?["labels"]?.objectValue ?? JSONObject() {
            if let value = member.value.stringValue { labels[member.key] = value }
        }
        let interPod = try InterPodConstraints.read(spec: spec, labels: labels, fail: fail)
        self.init(
            namespace: namespace, name: name, requests: requests, gpuResource: gpuResource,
            isNotebook: config.notebookSelectors.contains { $0.matches(labels) },
            constraints: PodConstraints(
                tolerations: tolerations, nodeSelector: nodeSelector, requiredTerms: terms, zones: volumeZones.map { Array(Set($0)).sorted() }),
            unsupportedResources: unsupported, labels: labels, interPod: interPod)
    }
}

/// A pod's placement constraints: tolerations, nodeSelector (ANDed), required node affinity terms
/// (ORed terms of ANDed requirements; none = any node) and the zones its volumes allow.
public struct PodConstraints: Sendable, Hashable {
    public let tolerations: [Toleration]
    public let nodeSelector: [LabelRequirement]
    public let requiredTerms: [[LabelRequirement]]
    public let zones: [String]?
    private let cachedHash: Int

    public init(tolerations: [Toleration] = [], nodeSelector: [LabelRequirement] = [], requiredTerms: [[LabelRequirement]] = [], zones: [String]? = nil) {
        self.tolerations = tolerations
        self.nodeSelector = nodeSelector
        self.requiredTerms = requiredTerms
        self.zones = zones
        var hasher = Hasher()
        for toleration in tolerations {
            hasher.combine(toleration.key); hasher.combine(toleration.operator); hasher.combine(toleration.value); hasher.combine(toleration.effect)
        }
        hasher.combine(-1)
        for requirement in nodeSelector { requirement.feed(&hasher) }
        for term in requiredTerms {
            hasher.combine(-2)
            for requirement in term { requirement.feed(&hasher) }
        }
        hasher.combine(zones)
        self.cachedHash = hasher.finalize()
    }

    /// The same constraints with the zones the pod's volumes allow.
    public func withZones(_ zones: [String]?) -> PodConstraints {
        PodConstraints(tolerations: tolerations, nodeSelector: nodeSelector, requiredTerms: requiredTerms, zones: zones)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(cachedHash) }

    /// Field by field, values in order: cheaper than `LabelRequirement`'s set equality, and two
    /// constraints that only differ in value order merely form two groups.
    public static func == (lhs: PodConstraints, rhs: PodConstraints) -> Bool {
        func same(_ a: [LabelRequirement], _ b: [LabelRequirement]) -> Bool {
            guard a.count == b.count else { return false }
            // Pods of one workload usually share the very same storage.
            if a.withUnsafeBufferPointer({ x in b.withUnsafeBufferPointer { x.baseAddress == $0.baseAddress } }) { return true }
            return zip(a, b).allSatisfy { $0.key == $1.key && $0.operator == $1.operator && $0.values == $1.values }
        }
        return lhs.cachedHash == rhs.cachedHash && lhs.tolerations == rhs.tolerations && same(lhs.nodeSelector, rhs.nodeSelector)
            && lhs.requiredTerms.count == rhs.requiredTerms.count && zip(lhs.requiredTerms, rhs.requiredTerms).allSatisfy(same)
            && lhs.zones == rhs.zones
    }

    public func tolerates(_ taints: [Taint]) -> Taint? {
        taints.first { taint in
            (taint.effect == "NoSchedule" || taint.effect == "NoExecute") && !tolerations.contains { $0.tolerates(taint) }
        }
    }

    /// Whether a node with these labels (looked up through `label`) satisfies selector and affinity.
    public func matches(_ label: (String) -> String?) -> Bool {
        for requirement in nodeSelector where !requirement.matches(value: label(requirement.key)) { return false }
        if requiredTerms.isEmpty { return true }
        for term in requiredTerms where term.allSatisfy({ $0.matches(value: label($0.key)) }) { return true }
        return false
    }

    /// The first requirement that rules a node out, for explanations.
    func firstFailure(_ label: (String) -> String?) -> String? {
        for requirement in nodeSelector where !requirement.matches(value: label(requirement.key)) { return "nodeSelector \(requirement)" }
        if requiredTerms.isEmpty || requiredTerms.contains(where: { $0.allSatisfy { $0.matches(value: label($0.key)) } }) { return nil }
        let failed = requiredTerms.compactMap { term in term.first { !$0.matches(value: label($0.key)) } }
        return "node affinity " + failed.map(\.description).joined(separator: " or ")
    }
}

extension LabelRequirement {
    func feed(_ hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(`operator`.rawValue)
        for value in values.sorted() { hasher.combine(value) }
    }
}
