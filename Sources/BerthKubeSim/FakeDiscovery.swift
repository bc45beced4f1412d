import BerthKube
import BerthModel
import BerthNet

/// One resource the fake serves, as discovery describes it (metav1.APIResource).
struct FakeServedResource: Sendable {
    var resource: KubeResource
    var singular: String
    var shortNames: [String] = []
    var categories: [String] = []
    var verbs = FakeServedResource.allVerbs
    /// Subresource name → (kind, group, version, verbs) for `pods/eviction` and the like.
    var subresources: [(name: String, kind: String, group: String, version: String, verbs: [String])] = []
    /// The store holding its objects when another resource shares it (core/v1 events are kept
    /// with events.k8s.io/v1 events, as the apiserver keeps one storage for both).
    var store: String?

    static let allVerbs = ["create", "delete", "get", "list", "patch", "update", "watch"]

    var storeKey: String { store ?? resource.qualifiedName }
}

/// What the fake serves and how discovery describes it: `/api`, `/api/v1`, `/apis`,
/// `/apis/<group>`, `/apis/<group>/<version>`, `/version`, and an OpenAPI v3 index whose
/// operations declare the `fieldValidation` and `dryRun` parameters (which is how kubectl decides
/// to validate on the server instead of downloading schemas). `/api` and `/apis` answer with
/// aggregated discovery (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList, every group, version and
/// resource in one document) when the client's Accept asks for it, as kubectl does, and with the
/// legacy APIVersions / APIGroupList otherwise.
enum FakeDiscovery {
    static let version = (major: "1", minor: "37", git: "v1.37.0-berth.fake")

    static let resources: [FakeServedResource] = {
        let status = { (kind: String, group: String, version: String) in
            (name: "status", kind: kind, group: group, version: version, verbs: ["get", "patch", "update"])
        }
        return [
            FakeServedResource(resource: .namespaces, singular: "namespace", shortNames: ["ns"],
                               verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
                               subresources: [status("Namespace", "", "v1")]),
            FakeServedResource(resource: .nodes, singular: "node", shortNames: ["no"], subresources: [status("Node", "", "v1")]),
            FakeServedResource(resource: .pods, singular: "pod", shortNames: ["po"], categories: ["all"],
                               subresources: [
                                   status("Pod", "", "v1"),
                                   (name: "eviction", kind: "Eviction", group: "policy", version: "v1", verbs: ["create"]),
                                   (name: "binding", kind: "Binding", group: "", version: "v1", verbs: ["create"]),
                               ]),
            FakeServedResource(resource: coreEvents, singular: "event", shortNames: ["ev"], store: KubeResource.events.qualifiedName),
            FakeServedResource(resource: .persistentVolumeClaims, singular: "persistentvolumeclaim", shortNames: ["pvc"],
                               subresources: [status("PersistentVolumeClaim", "", "v1")]),
            FakeServedResource(resource: .persistentVolumes, singular: "persistentvolume", shortNames: ["pv"],
                               subresources: [status("PersistentVolume", "", "v1")]),
            FakeServedResource(resource: daemonSets, singular: "daemonset", shortNames: ["ds"], categories: ["all"],
                               subresources: [status("DaemonSet", "apps", "v1")]),
            FakeServedResource(resource: selfSubjectAccessReviews, singular: "selfsubjectaccessreview", verbs: ["create"]),
            FakeServedResource(resource: .leases, singular: "lease"),
            FakeServedResource(resource: .events, singular: "event", shortNames: ["ev"]),
            FakeServedResource(resource: .podDisruptionBudgets, singular: "poddisruptionbudget", shortNames: ["pdb"],
                               subresources: [status("PodDisruptionBudget", "policy", "v1")]),
        ]
    }()

    static let coreEvents = KubeResource(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    static let daemonSets = KubeResource.daemonSets
    static let selfSubjectAccessReviews = KubeResource(group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews",
                                                       kind: "SelfSubjectAccessReview", namespaced: false)

    /// The served resource at group/version/plural, if any.
    static func served(group: String, version: String, plural: String) -> FakeServedResource? {
        resources.first { $0.resource.group == group && $0.resource.version == version && $0.resource.plural == plural }
    }

    /// Groups in the order discovery lists them (core first, then as the apiserver orders them).
    static var groups: [String] {
        var seen: [String] = []
        for served in resources where !served.resource.group.isEmpty && !seen.contains(served.resource.group) {
            seen.append(served.resource.group)
        }
        return seen
    }

    /// The discovery or version document at `path`, nil when `path` is not one.
    static func document(_ path: String, serverAddress: String, accept: String = "") -> HTTPResponse? {
        let segments = path.split(separator: "/").map(String.init)
        if segments.count == 1, segments[0] == "api" || segments[0] == "apis", wantsAggregated(accept) {
            return aggregated(core: segments[0] == "api")
        }
        switch segments.count {
        case 1 where segments[0] == "version":
            return json(["major": .string(version.major), "minor": .string(version.minor), "emulationMajor": .string(version.major),
                         "emulationMinor": .string(version.minor), "minCompatibilityMajor": .string(version.major),
                         "minCompatibilityMinor": .string(String((Int(version.minor) ?? 1) - 1)),
                         "gitVersion": .string(version.git), "gitCommit": "0000000000000000000000000000000000000000",
                         "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
                         "compiler": "gc", "platform": "linux/amd64"])
        case 1 where segments[0] == "api":
            return json(["kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]])
        case 2 where segments[0] == "api" && segments[1] == "v1":
            return json(resourceList(group: "", version: "v1"))
        case 1 where segments[0] == "apis":
            return json(["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups.map(apiGroup))])
        case 2 where segments[0] == "apis" && groups.contains(segments[1]):
            var group = apiGroup(segments[1])
            if case .object(var object) = group {
                object = JSONObject(["kind": "APIGroup", "apiVersion": "v1"]).merging(object)
                group = .object(object)
            }
            return json(group)
        case 3 where segments[0] == "apis" && resources.contains(where: { $0.resource.group == segments[1] && $0.resource.version == segments[2] }):
            return json(resourceList(group: segments[1], version: segments[2]))
        default:
            return nil
        }
    }

    /// Whether Accept names apidiscovery.k8s.io/v2's APIGroupDiscoveryList.
    static func wantsAggregated(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { part in
            let parameters = Set(part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) })
            return parameters.contains("g=apidiscovery.k8s.io") && parameters.contains("v=v2") && parameters.contains("as=APIGroupDiscoveryList")
        }
    }

    /// The aggregated discovery document of the core group (`/api`) or of the named groups (`/apis`).
    private static func aggregated(core: Bool) -> HTTPResponse {
        var items: [JSON] = []
        for group in core ? [""] : groups {
            var versionEntries: [JSON] = []
            var versions: [String] = []
            for served in resources where served.resource.group == group && !versions.contains(served.resource.version) {
                versions.append(served.resource.version)
            }
            for version in versions {
                var list: [JSON] = []
                for served in resources where served.resource.group == group && served.resource.version == version {
                    var entry: JSONObject = [
                        "resource": .string(served.resource.plural),
                        "responseKind": ["group": .string(group), "version": .string(version), "kind": .string(served.resource.kind)],
                        "scope": served.resource.namespaced ? "Namespaced" : "Cluster",
                        "singularResource": .string(served.singular),
                        "verbs": .array(served.verbs.map { .string($0) }),
                    ]
                    if !served.shortNames.isEmpty { entry["shortNames"] = .array(served.shortNames.map { .string($0) }) }
                    if !served.categories.isEmpty { entry["categories"] = .array(served.categories.map { .string($0) }) }
                    if !served.subresources.isEmpty {
                        entry["subresources"] = .array(served.subresources.map { sub in
                            ["subresource": .string(sub.name), "responseKind": ["group": .string(sub.group), "version": .string(sub.version), "kind": .string(sub.kind)],
                             "verbs": .array(sub.verbs.map { .string($0) })]
                        })
                    }
                    list.append(.object(entry))
                }
                versionEntries.append(["version": .string(version), "resources": .array(list), "freshness": "Current"])
            }
            items.append(["metadata": ["name": .string(group), "creationTimestamp": nil], "versions": .array(versionEntries)])
        }
        let body: JSON = ["kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": [:], "items": .array(items)]
        return HTTPResponse(status: 200, headers: ["Content-Type": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"],
                            body: JSONWriter.bytes(body))
    }

    private static func apiGroup(_ name: String) -> JSON {
        let version = resources.first { $0.resource.group == name }?.resource.version ?? "v1"
        let groupVersion: JSON = ["groupVersion": .string("\(name)/\(version)"), "version": .string(version)]
        return ["name": .string(name), "versions": [groupVersion], "preferredVersion": groupVersion]
    }

    private static func resourceList(group: String, version: String) -> JSON {
        var list: [JSON] = []
        for served in resources where served.resource.group == group && served.resource.version == version {
            var entry: JSONObject = ["name": .string(served.resource.plural), "singularName": .string(served.singular),
                                     "namespaced": .bool(served.resource.namespaced), "kind": .string(served.resource.kind),
                                     "verbs": .array(served.verbs.map { .string($0) })]
            if !served.shortNames.isEmpty { entry["shortNames"] = .array(served.shortNames.map { .string($0) }) }
            if !served.categories.isEmpty { entry["categories"] = .array(served.categories.map { .string($0) }) }
            list.append(.object(entry))
            for sub in served.subresources {
                var subEntry: JSONObject = ["name": .string("\(served.resource.plural)/\(sub.name)"), "singularName": "",
                                            "namespaced": .bool(served.resource.namespaced), "kind": .string(sub.kind),
                                            "verbs": .array(sub.verbs.map { .string($0) })]
                if sub.group != group || sub.version != version {
                    subEntry["group"] = .string(sub.group)
                    subEntry["version"] = .string(sub.version)
                }
                list.append(.object(subEntry))
            }
        }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion), "resources": .array(list)]
    }

    // MARK: - OpenAPI v3

    /// `/openapi/v3` (the index of group-versions) and `/openapi/v3/<api/v1|apis/g/v>`: for each
    /// served resource its collection and item paths, with the write operations declaring the
    /// `dryRun` and `fieldValidation` query parameters — what kubectl reads to send
    /// `fieldValidation=Strict` and leave validation to the server. No schemas (components are
    /// empty): a client that needs them gets nothing to validate against, not a wrong answer.
    static func openAPI(_ path: String) -> HTTPResponse? {
        let segments = path.split(separator: "/").map(String.init)
        guard segments.count >= 2, segments[0] == "openapi", segments[1] == "v3" else { return nil }
        var groupVersions: [(path: String, group: String, version: String)] = [("api/v1", "", "v1")]
        for group in groups {
            let version = resources.first { $0.resource.group == group }?.resource.version ?? "v1"
            groupVersions.append(("apis/\(group)/\(version)", group, version))
        }
        if segments.count == 2 {
            var paths = JSONObject()
            for entry in groupVersions {
                paths[entry.path] = ["serverRelativeURL": .string("/openapi/v3/\(entry.path)?hash=berth-fake-\(version.git)")]
            }
            return json(["paths": .object(paths)])
        }
        let wanted = segments.dropFirst(2).joined(separator: "/")
        guard let entry = groupVersions.first(where: { $0.path == wanted }) else { return nil }
        var paths = JSONObject()
        let base = entry.group.isEmpty ? "/api/\(entry.version)" : "/apis/\(entry.group)/\(entry.version)"
        func parameter(_ name: String, _ description: String) -> JSON {
            ["name": .string(name), "in": "query", "description": .string(description), "schema": ["type": "string", "uniqueItems": true]]
        }
        let writeParameters: JSON = [
            parameter("dryRun", "When present, indicates that modifications should not be persisted."),
            parameter("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
            parameter("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict."),
        ]
        for served in resources where served.resource.group == entry.group && served.resource.version == entry.version {
            let gvk: JSON = ["group": .string(entry.group), "version": .string(entry.version), "kind": .string(served.resource.kind)]
            func operation(_ id: String, writes: Bool) -> JSON {
                var object: JSONObject = ["operationId": .string(id), "x-kubernetes-group-version-kind": gvk,
                                          "responses": ["200": ["description": "OK"]]]
                if writes { object["parameters"] = writeParameters }
                return .object(object)
            }
            let kind = served.resource.kind
            let collection = served.resource.namespaced ? "\(base)/namespaces/{namespace}/\(served.resource.plural)" : "\(base)/\(served.resource.plural)"
            var collectionOps: JSONObject = [:]
            if served.verbs.contains("list") { collectionOps["get"] = operation("list\(kind)", writes: false) }
            if served.verbs.contains("create") { collectionOps["post"] = operation("create\(kind)", writes: true) }
            paths[collection] = .object(collectionOps)
            if served.verbs.contains("get") {
                paths["\(collection)/{name}"] = [
                    "get": operation("read\(kind)", writes: false), "put": operation("replace\(kind)", writes: true),
                    "patch": operation("patch\(kind)", writes: true), "delete": operation("delete\(kind)", writes: true),
                ]
            }
        }
        return json(["openapi": "3.0.0", "info": ["title": "Kubernetes (Berth's fake apiserver)", "version": .string(version.git)],
                     "paths": .object(paths), "components": ["schemas": [:]]])
    }

    private static func json(_ value: JSON) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: JSONWriter.bytes(value))
    }
}

extension JSONObject {
    /// This object's members after `first`'s (keys of `first` first).
    fileprivate func merging(_ other: JSONObject) -> JSONObject {
        var result = self
        for member in other { result[member.key] = member.value }
        return result
    }
}
