import BerthModel

/// The topology domains the scheduler models: one node (`kubernetes.io/hostname`) or one zone
/// (`topology.kubernetes.io/zone`). A term on any other key cannot be modelled.
public enum TopologyDomain: String, Sendable, Hashable {
    case hostname = "kubernetes.io/hostname"
    case zone = "topology.kubernetes.io/zone"
}

/// A required pod (anti-)affinity term: the pods `selector` picks, in `namespaces` (empty: the
/// pod's own; `allNamespaces`: an empty `namespaceSelector`), within one `domain`.
public struct PodAffinityTerm: Sendable, Equatable {
    public var selector: LabelSelector
    public var namespaces: [String]
    public var allNamespaces: Bool
    public var domain: TopologyDomain

    public init(selector: LabelSelector, namespaces: [String] = [], allNamespaces: Bool = false, domain: TopologyDomain) {
        self.selector = selector
        self.namespaces = namespaces
        self.allNamespaces = allNamespaces
        self.domain = domain
    }

    /// Whether `pod` is one of the pods this term (written on a pod of `ownNamespace`) names.
    public func selects(_ pod: PodRequirements, ownNamespace: String) -> Bool {
        guard allNamespaces || (namespaces.isEmpty ? pod.namespace == ownNamespace : namespaces.contains(pod.namespace)) else { return false }
        return selector.matches(pod.labels)
    }
}

/// A topology spread constraint with `whenUnsatisfiable: DoNotSchedule` (`ScheduleAnyway` is a
/// preference and ignored): in every domain, the pods `selector` picks (in the pod's namespace)
/// may exceed the emptiest domain's count by at most `maxSkew`.
public struct SpreadConstraint: Sendable, Equatable {
    public var maxSkew: Int
    public var domain: TopologyDomain
    public var selector: LabelSelector

    public init(maxSkew: Int, domain: TopologyDomain, selector: LabelSelector) {
        self.maxSkew = maxSkew
        self.domain = domain
        self.selector = selector
    }
}

/// A port taken on the node's own address (`hostPort`, or any container port with
/// `hostNetwork: true`). Two pods conflict when protocol and port are equal (whatever the host IP:
/// conservative, as `0.0.0.0` overlaps every address).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var port: Int
    public var `protocol`: String

    public init(port: Int, protocol: String = "TCP") {
        self.port = port
        self.protocol = `protocol`
    }

    public var description: String { "\(port)/\(`protocol`)" }
}

/// What ties a pod's placement to other pods: required pod affinity and anti-affinity,
/// `DoNotSchedule` topology spread, host ports. Empty for most pods (they take the scheduler's
/// fast path). `unmodelled` says why a pod's constraints cannot be modelled (a topology key other
/// than hostname or zone, a namespace selector): such a pod gets a node of its own.
public struct InterPodConstraints: Sendable, Equatable {
    public var affinity: [PodAffinityTerm] = []
    public var antiAffinity: [PodAffinityTerm] = []
    public var spread: [SpreadConstraint] = []
    public var hostPorts: [HostPort] = []
    public var unmodelled: String?

    public init(
        affinity: [PodAffinityTerm] = [], antiAffinity: [PodAffinityTerm] = [], spread: [SpreadConstraint] = [], hostPorts: [HostPort] = [],
        unmodelled: String? = nil
    ) {
        self.affinity = affinity
        self.antiAffinity = antiAffinity
        self.spread = spread
        self.hostPorts = hostPorts
        self.unmodelled = unmodelled
    }

    public var isEmpty: Bool { affinity.isEmpty && antiAffinity.isEmpty && spread.isEmpty && hostPorts.isEmpty && unmodelled == nil }

    /// Reads the pod's spec (`spec.affinity.podAffinity`/`podAntiAffinity` required terms,
    /// `spec.topologySpreadConstraints`, container host ports); `fail` names a malformed field.
    static func read(spec: JSON?, labels: [String: String], fail: (String, String) -> SchedulingError) throws(SchedulingError) -> InterPodConstraints {
        var result = InterPodConstraints()
        var unmodelled: [String] = []
        func selector(_ json: JSON?, field: String) throws(SchedulingError) -> LabelSelector? {
            // An absent selector selects no pod (upstream: nil selector matches nothing).
            guard let json, !json.isNull else { return nil }
            guard json.objectValue != nil else { throw fail(field, "expected an object, found \(json.typeName)") }
            var matchLabels: [String: String] = [:]
            for member in json["matchLabels"]?.objectValue ?? JSONObject() {
                guard let value = member.value.stringValue else { throw fail("\(field).matchLabels.\(member.key)", "expected a string") }
                matchLabels[member.key] = value
            }
            var expressions: [LabelRequirement] = []
            for (index, expression) in (json["matchExpressions"]?.arrayValue ?? []).enumerated() {
                guard let requirement = LabelRequirement(json: expression), requirement.operator != .gt, requirement.operator != .lt else {
                    throw fail("\(field).matchExpressions[\(index)]", "expected key, operator In, NotIn, Exists or DoesNotExist, and values")
                }
                expressions.append(requirement)
            }
            return LabelSelector(matchLabels: matchLabels, matchExpressions: expressions)
        }
        func domain(_ json: JSON?, field: String) throws(SchedulingError) -> TopologyDomain? {
            guard let key = json?.stringValue, !key.isEmpty else { throw fail(field, "is required") }
            guard let domain = TopologyDomain(rawValue: key) else {
                unmodelled.append("topology key \(key)")
                return nil
            }
            return domain
        }
        for (kind, into) in [("podAffinity", \InterPodConstraints.affinity), ("podAntiAffinity", \InterPodConstraints.antiAffinity)] {
            let path = "spec.affinity.\(kind).requiredDuringSchedulingIgnoredDuringExecution"
            guard let list = spec?["affinity"]?[kind]?["requiredDuringSchedulingIgnoredDuringExecution"], !list.isNull else { continue }
            guard let terms = list.arrayValue else { throw fail(path, "expected a list, found \(list.typeName)") }
            for (index, term) in terms.enumerated() {
                let field = "\(path)[\(index)]"
                guard let topology = try domain(term["topologyKey"], field: "\(field).topologyKey") else { continue }
                let namespaces = (term["namespaces"]?.arrayValue ?? []).compactMap(\.stringValue)
                var all = false
                if let namespaceSelector = term["namespaceSelector"], !namespaceSelector.isNull {
                    if namespaceSelector.objectValue?.isEmpty ?? false {
                        all = true
                    } else {
                        unmodelled.append("a namespaceSelector in \(kind)")
                        continue
                    }
                }
                if term["matchLabelKeys"]?.arrayValue?.isEmpty == false || term["mismatchLabelKeys"]?.arrayValue?.isEmpty == false {
                    unmodelled.append("matchLabelKeys in \(kind)")
                    continue
                }
                guard let selector = try selector(term["labelSelector"], field: "\(field).labelSelector") else { continue }
                result[keyPath: into].append(PodAffinityTerm(selector: selector, namespaces: namespaces, allNamespaces: all, domain: topology))
            }
        }
        if let list = spec?["topologySpreadConstraints"], !list.isNull {
            guard let constraints = list.arrayValue else { throw fail("spec.topologySpreadConstraints", "expected a list, found \(list.typeName)") }
            for (index, constraint) in constraints.enumerated() {
                let field = "spec.topologySpreadConstraints[\(index)]"
                guard constraint["whenUnsatisfiable"]?.stringValue == "DoNotSchedule" else { continue }
                guard case let .number(text)? = constraint["maxSkew"], let skew = Int(text), skew >= 1 else {
                    throw fail("\(field).maxSkew", "expected a whole number of at least 1")
                }
                guard let topology = try domain(constraint["topologyKey"], field: "\(field).topologyKey") else { continue }
                if constraint["minDomains"].map({ !$0.isNull }) ?? false {
                    unmodelled.append("minDomains in a topology spread constraint")
                    continue
                }
                guard var selector = try selector(constraint["labelSelector"], field: "\(field).labelSelector") else { continue }
                // matchLabelKeys: the pod's own values for those keys are ANDed into the selector.
                for key in (constraint["matchLabelKeys"]?.arrayValue ?? []).compactMap(\.stringValue) {
                    if let value = labels[key] { selector.matchLabels[key] = value }
                }
                result.spread.append(SpreadConstraint(maxSkew: skew, domain: topology, selector: selector))
            }
        }
        let hostNetwork = spec?["hostNetwork"]?.boolValue ?? false
        var ports = Set<HostPort>()
        for (index, container) in (spec?["containers"]?.arrayValue ?? []).enumerated() {
            for (position, port) in (container["ports"]?.arrayValue ?? []).enumerated() {
                let key = hostNetwork ? "containerPort" : "hostPort"
                guard let value = port[key], !value.isNull else { continue }
                guard case let .number(text) = value, let number = Int(text), number >= 0, number <= 65535 else {
                    throw fail("spec.containers[\(index)].ports[\(position)].\(key)", "expected a port number")
                }
                if number > 0 { ports.insert(HostPort(port: number, protocol: port["protocol"]?.stringValue ?? "TCP")) }
            }
        }
        result.hostPorts = ports.sorted { ($0.port, $0.protocol) < ($1.port, $1.protocol) }
        if !unmodelled.isEmpty { result.unmodelled = unmodelled.joined(separator: ", ") }
        return result
    }
}
