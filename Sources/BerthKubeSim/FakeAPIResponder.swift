import BerthKube
import BerthModel
import BerthNet
import Dispatch
import Foundation

/// Routes REST requests for the fake apiserver. Runs on the server's event-loop thread and never
/// blocks: all work is in memory under the store's lock; watches get an `HTTPBodyStream`.
struct FakeAPIResponder: HTTPResponder {
    let state: FakeAPIStore
    let options: FakeKubeAPIServer.Options

    /// Resources whose status is a subresource (main writes keep status, status writes keep the rest).
    static let statusSubresource: Set<String> = ["pods", "nodes", "poddisruptionbudgets.policy"]

    struct Route {
        /// Where the objects are kept (core/v1 events: with events.k8s.io/v1 events).
        var resource: KubeResource
        /// What the client asked for: kind and apiVersion of what it gets back.
        var presented: KubeResource
        var namespace: String?
        var name: String?
        var subresource: String?

        var coreEvents: Bool { presented == FakeDiscovery.coreEvents }
        /// A stored object as this route's client sees it.
        func present(_ object: JSON) -> JSON { coreEvents ? FakeEvents.toCore(object) : object }
        /// A client's object in the stored shape.
        func accept(_ object: JSON) -> JSON { coreEvents ? FakeEvents.fromCore(object) : object }
    }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        let sent = request.target
        var request = request
        // Served under a path prefix (a gateway in front of the apiserver): anything else is not found.
        if !options.pathPrefix.isEmpty {
            let prefix = options.pathPrefix
            guard request.path.hasPrefix(prefix + "/") else {
                state.withLock { $0.requestLog.append("\(request.method) \(sent)") }
                return HTTPResponse(status: 404, headers: ["Content-Type": "text/plain"], body: Array("404 page not found\n".utf8))
            }
            request.target = String(request.target.dropFirst(prefix.count))
            request.path = String(request.path.dropFirst(prefix.count))
        }
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            var actions: [@Sendable () -> Void] = []
            for index in state.hooks.indices where state.hooks[index].remaining > 0
                && state.hooks[index].method == request.method && request.path.contains(state.hooks[index].pathContains) {
                state.hooks[index].remaining -= 1
                actions.append(state.hooks[index].action)
            }
            return actions
        }
        for action in actions { action() }
        let failure = state.withLock { state -> FakeAPIState.Failure? in
            state.requestLog.append("\(request.method) \(sent)")
            guard let index = state.failures.firstIndex(where: { $0.pathContains.isEmpty || request.path.contains($0.pathContains) }) else { return nil }
            let failure = state.failures[index]
            state.failures[index].remaining -= 1
            if state.failures[index].remaining <= 0 { state.failures.remove(at: index) }
            return failure
        }
        if let failure {
            if let raw = failure.raw { return HTTPResponse(status: failure.status, headers: ["Content-Type": "application/json"], body: raw) }
            var response = Self.status(failure.status, "injected failure")
            if let retryAfter = failure.retryAfter { response.headers.add(name: "Retry-After", value: String(retryAfter)) }
            return response
        }
        // Authentication (401) before anything else, as the apiserver's filter chain does.
        if options.clientCAFile == nil {
            let header = request.headers["Authorization"] ?? ""
            guard header.hasPrefix("Bearer "), let access = options.tokens[String(header.dropFirst(7))] else {
                return Self.status(401, "Unauthorized", reason: "Unauthorized")
            }
            if access == .forbidden {
                return Self.status(403, "User \"system:serviceaccount:test:denied\" cannot \(request.method.lowercased()) resource at \(request.path)", reason: "Forbidden")
            }
        }
        if request.method == "GET" {
            let host = request.headers["Host"] ?? "127.0.0.1"
            if let document = FakeDiscovery.document(request.path, serverAddress: host, accept: request.headers["Accept"] ?? "")
                ?? FakeDiscovery.openAPI(request.path) { return document }
        }
        guard let route = Self.route(request.path) else {
            return Self.status(404, "the server could not find the requested resource", reason: "NotFound")
        }
        let query = PathEncoding.queryItems(request.target)
        // Bodies are JSON, or protobuf for the few kinds kubectl posts that way (FakeProtobuf);
        // anything else is refused as an unsupported media type. Answers are always JSON.
        let contentType = (request.headers["Content-Type"] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        var body: JSON?
        let unsupported = Self.status(415, "the body of the request was in an unknown format - accepted media types include: application/json", reason: "UnsupportedMediaType")
        if !request.body.isEmpty, contentType == "application/vnd.kubernetes.protobuf", request.method != "PATCH" {
            do throws(FakeProtobuf.DecodeError) {
                guard let decoded = try FakeProtobuf.decode(request.body) else { return unsupported }
                body = decoded
            } catch {
                return Self.status(400, "the protobuf body cannot be read: \(error.message)", reason: "BadRequest")
            }
        } else if !request.body.isEmpty, !contentType.isEmpty, contentType != "application/json", request.method != "PATCH" {
            return unsupported
        }
        if body == nil, !request.body.isEmpty {
            guard let parsed = try? JSONParser.parse(request.body) else {
                return Self.status(400, "the request body is not valid JSON", reason: "BadRequest")
            }
            body = parsed
        }
        // dryRun: "All" is the only value (apimachinery ValidateDryRun).
        var dryRun = false
        if let value = query["dryRun"] {
            guard value == "All" else {
                return Self.status(400, "Invalid dryRun value \"\(value)\": only \"All\" is supported", reason: "BadRequest")
            }
            dryRun = request.method != "GET"
        }
        if let validation = query["fieldValidation"], !["", "Ignore", "Warn", "Strict"].contains(validation) {
            return Self.status(400, "fieldValidation: Unsupported value: \"\(validation)\": supported values: \"Ignore\", \"Strict\", \"Warn\"", reason: "BadRequest")
        }
        let table = FakeTables.wanted(request.headers["Accept"] ?? "")
        let include = query["includeObject"] ?? "Metadata"
        switch (request.method, route.name, route.subresource) {
        case ("GET", nil, nil):
            if query["watch"] == "true" || query["watch"] == "1" { return watch(route, query, table: table ? include : nil) }
            return list(route, query, table: table ? include : nil)
        case ("GET", _?, let subresource) where subresource == nil || subresource == "status":
            return get(route, table: table ? include : nil)
        case ("POST", nil, nil) where route.resource == FakeDiscovery.selfSubjectAccessReviews:
            return reviewAccess(body)
        case ("POST", nil, nil):
            if let problem = FakeValidation.unknownFields(body, resource: route.presented, strict: query["fieldValidation"] == "Strict") {
                return Self.status(400, problem, reason: "BadRequest")
            }
            return create(route, body, dryRun: dryRun)
        case ("POST", let name?, "eviction"):
            return evict(route, name: name, dryRun: dryRun || body?["deleteOptions"]?["dryRun"]?.arrayValue?.isEmpty == false)
        case ("POST", let name?, "binding"):
            return bind(route, name: name, body)
        case ("PUT", _?, let subresource) where subresource == nil || subresource == "status":
            if let problem = FakeValidation.unknownFields(body, resource: route.presented, strict: query["fieldValidation"] == "Strict") {
                return Self.status(400, problem, reason: "BadRequest")
            }
            return update(route, body, dryRun: dryRun)
        case ("PATCH", _?, let subresource) where subresource == nil || subresource == "status":
            return patch(route, body, contentType: request.headers["Content-Type"] ?? "", dryRun: dryRun)
        case ("DELETE", _?, nil):
            return delete(route, body, dryRun: dryRun || body?["dryRun"]?.arrayValue?.isEmpty == false)
        default:
            return Self.status(405, "method \(request.method) not allowed on \(request.path)", reason: "MethodNotAllowed")
        }
    }

    // MARK: - Routing

    /// `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]`, `/apis/G/V[/namespaces/NS]/PLURAL[/NAME[/SUB]]`.
    static func route(_ path: String) -> Route? {
        let segments = path.split(separator: "/").map { PathEncoding.decode($0) }
        var rest: ArraySlice<String>
        var group = ""
        var version: String
        if segments.first == "api", segments.count >= 3 {
            version = segments[1]
            rest = segments[2...]
        } else if segments.first == "apis", segments.count >= 4 {
            group = segments[1]
            version = segments[2]
            rest = segments[3...]
        } else {
            return nil
        }
        var namespace: String?
        if rest.first == "namespaces", rest.count >= 3 {
            namespace = rest[rest.startIndex + 1]
            rest = rest.dropFirst(2)
        }
        guard let plural = rest.first else { return nil }
        let name = rest.count > 1 ? rest[rest.startIndex + 1] : nil
        let subresource = rest.count > 2 ? rest[rest.startIndex + 2] : nil
        guard rest.count <= 3 else { return nil }
        // Only what discovery lists is served: anything else is 404, as upstream.
        guard let served = FakeDiscovery.served(group: group, version: version, plural: plural) else { return nil }
        let resource = served.resource
        if resource.namespaced == false && namespace != nil { return nil }
        if resource.namespaced && namespace == nil && name != nil { return nil }
        if let subresource, !served.subresources.contains(where: { $0.name == subresource }) { return nil }
        let stored = served.store == nil ? resource : FakeDiscovery.resources.first { $0.resource.qualifiedName == served.store }!.resource
        return Route(resource: stored, presented: resource, namespace: namespace, name: name, subresource: subresource)
    }

    // MARK: - Reads

    private func get(_ route: Route, table include: String?) -> HTTPResponse {
        let key = FakeAPIState.key(route.namespace, route.name!)
        guard let object = state.withLock({ $0.objects[route.resource.qualifiedName]?[key] }) else {
            return Self.notFound(route)
        }
        let presented = route.present(object)
        if let include {
            return FakeTables.response(FakeTables.table(route.presented, [presented], include: include,
                                                        resourceVersion: presented["metadata"]?["resourceVersion"]?.stringValue ?? "", continueToken: nil))
        }
        return Self.json(200, presented)
    }

    /// `labelSelector` and `fieldSelector` of a list or watch; a 400 when one does not parse.
    private static func selectors(_ route: Route, _ query: [String: String]) -> Result<(FakeLabelSelector?, FakeFieldSelector?), BadSelector> {
        var labels: FakeLabelSelector?
        var fields: FakeFieldSelector?
        if let text = query["labelSelector"], !text.isEmpty {
            guard let parsed = FakeLabelSelector(text) else {
                return .failure(BadSelector(response: status(400, "unable to parse requirement: \(text)", reason: "BadRequest")))
            }
            labels = parsed
        }
        if let text = query["fieldSelector"], !text.isEmpty {
            switch FakeFieldSelector.parse(text, plural: route.presented.qualifiedName) {
            case .success(let parsed): fields = parsed
            case .failure(let error): return .failure(BadSelector(response: status(400, error.message, reason: "BadRequest")))
            }
        }
        return .success((labels, fields))
    }

    private struct BadSelector: Error {
        let response: HTTPResponse
    }

    /// Pagination: the continue token carries the list's revision and the last key served
    /// (upstream encodes the same in base64 JSON; a compacted revision is 410 there too).
    private func list(_ route: Route, _ query: [String: String], table include: String?) -> HTTPResponse {
        let labels: FakeLabelSelector?, fields: FakeFieldSelector?
        switch Self.selectors(route, query) {
        case let .success(parsed): (labels, fields) = parsed
        case let .failure(answer): return answer.response
        }
        // k8s.io/apimachinery ValidateListOptions, answered as an Invalid ListOptions (422).
        if let match = query["resourceVersionMatch"], !match.isEmpty {
            var problem: String?
            if !["Exact", "NotOlderThan"].contains(match) {
                problem = "resourceVersionMatch: Unsupported value: \"\(match)\": supported values: \"Exact\", \"NotOlderThan\", \"\""
            } else if (query["resourceVersion"] ?? "").isEmpty {
                problem = "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
            } else if !(query["continue"] ?? "").isEmpty {
                problem = "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided"
            } else if match == "Exact" && query["resourceVersion"] == "0" {
                problem = "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
            }
            if let problem {
                return Self.status(422, "ListOptions.meta.k8s.io \"\" is invalid: \(problem)", reason: "Invalid")
            }
        }
        if let version = query["resourceVersion"], !version.isEmpty, version != "0", let token = query["continue"], !token.isEmpty {
            return Self.status(400, "specifying resource version is not allowed when using continue", reason: "BadRequest")
        }
        let limit = query["limit"].flatMap(Int.init) ?? 0
        var after = ""
        var listRevision: Int?
        if let token = query["continue"], !token.isEmpty {
            guard let data = Data(base64Encoded: token), let decoded = try? JSONParser.parse(Array(data)),
                  let start = decoded["start"]?.stringValue, let revision = decoded["rv"]?.intValue else {
                return Self.status(400, "continue key is not valid", reason: "BadRequest")
            }
            let oldest = state.withLock { $0.oldestResumable }
            if revision < oldest {
                return Self.status(410, "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.", reason: "Expired")
            }
            after = start
            listRevision = revision
        }
        let (items, revision) = state.withLock { state -> ([(String, JSON)], Int) in
            let all = (state.objects[route.resource.qualifiedName] ?? [:]).filter { key, object in
                if let namespace = route.namespace, object["metadata"]?["namespace"]?.stringValue != namespace { return false }
                if let labels, !labels.matches(object.labels) { return false }
                if let fields, !fields.matches(route.present(object)) { return false }
                return key > after
            }
            return (all.sorted { $0.key < $1.key }, state.revision)
        }
        let page = limit > 0 ? Array(items.prefix(limit)) : items
        let remaining = items.count - page.count
        var metadata: JSONObject = ["resourceVersion": .string(String(listRevision ?? revision))]
        if remaining > 0, let last = page.last {
            let token = JSONWriter.bytes(["rv": .number(listRevision ?? revision), "start": .string(last.0)])
            metadata["continue"] = .string(Data(token).base64EncodedString())
            metadata["remainingItemCount"] = .number(remaining)
        }
        if let include {
            return FakeTables.response(FakeTables.table(route.presented, page.map { route.present($0.1) }, include: include,
                                                        resourceVersion: metadata["resourceVersion"]?.stringValue ?? "",
                                                        continueToken: metadata["continue"]?.stringValue))
        }
        let list: JSON = ["kind": .string(route.presented.kind + "List"), "apiVersion": .string(route.presented.apiVersion),
                          "metadata": .object(metadata), "items": .array(page.map { route.present($0.1) })]
        return Self.json(200, list)
    }

    /// resourceVersion "" or "0": synthetic ADDED events for current objects, then changes
    /// (upstream "Get State and Start at Most Recent"); otherwise changes after that version,
    /// or an ERROR event with 410 when it is older than the history kept.
    private func watch(_ route: Route, _ query: [String: String], table: String?) -> HTTPResponse {
        let labels: FakeLabelSelector?, fields: FakeFieldSelector?
        switch Self.selectors(route, query) {
        case let .success(parsed): (labels, fields) = parsed
        case let .failure(answer): return answer.response
        }
        let requested = query["resourceVersion"] ?? ""
        var from: Int?
        if !requested.isEmpty && requested != "0" {
            guard let value = Int(requested) else {
                return Self.status(400, "invalid resource version \"\(requested)\"", reason: "BadRequest")
            }
            from = value
        }
        let stream = HTTPBodyStream()
        let watcher = FakeAPIState.Watcher(resource: route.resource.qualifiedName, namespace: route.namespace, labels: labels, fields: fields,
                                           bookmarks: query["allowWatchBookmarks"] == "true", kind: route.presented.kind,
                                           apiVersion: route.presented.apiVersion, stream: stream, coreEvents: route.coreEvents,
                                           table: table.map { (route.presented, $0) })
        let closeAtOnce = state.withLock { $0.closeWatchesAtOnce }
        if closeAtOnce {
            stream.finish()
            return .streaming(status: 200, headers: ["Content-Type": "application/json"], stream: stream)
        }
        state.withLock { state in
            state.watchers.removeAll { $0.stream.isCancelled }
            if let from {
                if from < state.oldestResumable {
                    // The watch cache's answer (k8s.io/apiserver storage/cacher): 200, then one ERROR
                    // event whose Status is 410 Expired, then the end of the stream.
                    let status = APIStatus(code: 410, reason: "Expired", message: "too old resource version: \(from) (\(state.oldestResumable))")
                    stream.push(FakeAPIState.eventLine(type: "ERROR", object: status.json))
                    stream.finish()
                    return
                }
                for entry in state.history where entry.revision > from && entry.resource == route.resource.qualifiedName {
                    if let (type, object) = watcher.translate(type: entry.type, object: entry.object, previous: entry.previous) {
                        stream.push(FakeAPIState.eventLine(type: type, object: watcher.output(object)))
                    }
                }
            } else {
                for (_, object) in (state.objects[route.resource.qualifiedName] ?? [:]).sorted(by: { $0.key < $1.key }) where watcher.matches(object) {
                    stream.push(FakeAPIState.eventLine(type: "ADDED", object: watcher.output(object)))
                }
            }
            state.watchers.append(watcher)
        }
        // timeoutSeconds: the apiserver ends the watch cleanly after it (the client resumes).
        if let seconds = query["timeoutSeconds"].flatMap(Double.init), seconds > 0 {
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { stream.finish() }
        }
        return .streaming(status: 200, headers: ["Content-Type": "application/json"], stream: stream)
    }

    // MARK: - Writes

    private func create(_ route: Route, _ body: JSON?, dryRun: Bool) -> HTTPResponse {
        guard let received = body, case .object = received else { return Self.status(400, "the body must be an object", reason: "BadRequest") }
        if let kind = received["kind"]?.stringValue, kind != route.presented.kind {
            return Self.status(400, "the kind \(kind) does not match \(route.presented.kind)", reason: "BadRequest")
        }
        var object = route.accept(received)
        // Type information comes from the URL when the body leaves it out (as the apiserver's decoder does).
        if object["kind"] == nil { setTop(&object, "kind", .string(route.resource.kind)) }
        if object["apiVersion"] == nil { setTop(&object, "apiVersion", .string(route.resource.apiVersion)) }
        if let namespace = object["metadata"]?["namespace"]?.stringValue, let routeNamespace = route.namespace, namespace != routeNamespace {
            return Self.status(400, "the namespace of the provided object does not match the namespace sent on the request", reason: "BadRequest")
        }
        if let namespace = route.namespace { setMeta(&object, "namespace", .string(namespace)) }
        if let admission = options.admission {
            do {
                object = try admission(route.resource, object)
            } catch {
                return Self.status(400, "admission webhook denied the request: \(error)", reason: "BadRequest")
            }
        }
        var name = object["metadata"]?["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = object["metadata"]?["generateName"]?.stringValue, !prefix.isEmpty {
            let letters = Array("bcdfghjklmnpqrstvwxz2456789")
            name = prefix + String((0..<5).map { _ in letters.randomElement()! })
            setMeta(&object, "name", .string(name))
        }
        guard !name.isEmpty else { return Self.status(422, "\(route.presented.kind) \"\": metadata.name: Required value: name or generateName is required", reason: "Invalid") }
        setMeta(&object, "resourceVersion", nil)
        setMeta(&object, "deletionTimestamp", nil)
        if route.resource == .pods { object = FakeDefaults.pod(object) }
        let key = FakeAPIState.key(route.namespace, name)
        let stored = state.withLock { state -> JSON? in
            guard state.objects[route.resource.qualifiedName]?[key] == nil else { return nil }
            setMeta(&object, "uid", .string(state.nextUID()))
            setMeta(&object, "creationTimestamp", .string(RFC3339.string(Date())))
            if object["kind"] == nil { setTop(&object, "kind", .string(route.resource.kind)) }
            if object["apiVersion"] == nil { setTop(&object, "apiVersion", .string(route.resource.apiVersion)) }
            // dryRun=All: everything a create does, nothing kept.
            return dryRun ? object : state.record(route.resource, object, type: "ADDED")
        }
        guard let stored else {
            return Self.status(409, "\(route.presented.qualifiedName) \"\(name)\" already exists", reason: "AlreadyExists",
                               details: Self.details(route.presented, name: name))
        }
        return Self.json(201, route.present(stored))
    }

    /// authorization.k8s.io SelfSubjectAccessReview: the fake has no authorizer, so an
    /// authenticated user may do anything it serves (`kubectl auth can-i`).
    private func reviewAccess(_ body: JSON?) -> HTTPResponse {
        guard let review = body, case .object(var object) = review, review["spec"] != nil else {
            return Self.status(400, "the body must be a SelfSubjectAccessReview", reason: "BadRequest")
        }
        let attributes = review["spec"]?["resourceAttributes"]
        var allowed = true
        if let attributes, let resource = attributes["resource"]?.stringValue, resource != "*" {
            let group = attributes["group"]?.stringValue ?? ""
            allowed = FakeDiscovery.resources.contains { $0.resource.group == group && $0.resource.plural == resource }
        }
        object["metadata"] = ["creationTimestamp": nil]
        object["status"] = allowed ? ["allowed": true, "reason": "the fake apiserver authorizes every authenticated request"]
            : ["allowed": false, "reason": "the fake apiserver does not serve that resource"]
        return Self.json(201, .object(object))
    }

    private func update(_ route: Route, _ body: JSON?, dryRun: Bool) -> HTTPResponse {
        guard let received = body, case .object = received else { return Self.status(400, "the body must be an object", reason: "BadRequest") }
        if let name = received["metadata"]?["name"]?.stringValue, name != route.name {
            return Self.status(400, "the name of the object (\(name)) does not match the name on the URL (\(route.name!))", reason: "BadRequest")
        }
        let object = route.accept(received)
        return write(route, expectedVersion: object["metadata"]?["resourceVersion"]?.stringValue, dryRun: dryRun) { _ in object }
    }

    private func patch(_ route: Route, _ body: JSON?, contentType: String, dryRun: Bool) -> HTTPResponse {
        guard let patch = body else { return Self.status(400, "empty patch", reason: "BadRequest") }
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let apply: (JSON) throws -> JSON
        switch type {
        case PatchType.merge.rawValue:
            apply = { FakePatch.merge($0, patch) }
        case PatchType.strategicMerge.rawValue:
            apply = { current in try FakePatch.strategic(current, patch) }
        case PatchType.json.rawValue:
            apply = { current in try FakePatch.json(current, patch) }
        default:
            return Self.status(415, "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json", reason: "UnsupportedMediaType")
        }
        // A resourceVersion inside the patch is a precondition (upstream patcher). A patch is
        // applied to the object as the client sees it (core/v1 events in their own shape).
        return write(route, expectedVersion: patch["metadata"]?["resourceVersion"]?.stringValue, dryRun: dryRun) { current in
            route.accept(try apply(route.present(current)))
        }
    }

    /// Shared by PUT and PATCH: optimistic concurrency, immutable fields, status subresource,
    /// finalizer completion, no-op detection.
    private func write(_ route: Route, expectedVersion: String?, dryRun: Bool = false, change: (JSON) throws -> JSON) -> HTTPResponse {
        let key = FakeAPIState.key(route.namespace, route.name!)
        let resource = route.resource
        return state.withLock { state -> HTTPResponse in
            guard let current = state.objects[resource.qualifiedName]?[key] else { return Self.notFound(route) }
            let currentVersion = current["metadata"]?["resourceVersion"]?.stringValue ?? ""
            if let expectedVersion, !expectedVersion.isEmpty, expectedVersion != currentVersion {
                // k8s.io/apiserver registry/generic/registry: errors.NewConflict(..., OptimisticLockErrorMsg)
                return Self.status(409, "Operation cannot be fulfilled on \(route.presented.qualifiedName) \"\(route.name!)\": the object has been modified; please apply your changes to the latest version and try again",
                                   reason: "Conflict", details: Self.details(route.presented, name: route.name!))
            }
            var updated: JSON
            do {
                updated = try change(current)
            } catch let error as FakePatchError {
                return Self.status(400, error.message, reason: "BadRequest")
            } catch let error as FakePatchApplyError {
                // A JSON patch that does not apply (a failed `test`, a missing path): upstream's
                // errors.NewGenericServerResponse(422, ...) with the patch library's message as the cause.
                return Self.status(422, "the server rejected our request due to an error in our request", reason: "Invalid",
                                   details: ["causes": [["reason": "UnexpectedServerResponse", "message": .string(error.message)]]])
            } catch {
                return Self.status(422, "patch could not be applied: \(error)", reason: "Invalid")
            }
            guard case .object = updated else { return Self.status(400, "the result is not an object", reason: "BadRequest") }
            if Self.statusSubresource.contains(resource.qualifiedName) {
                if route.subresource == "status" {
                    var merged = current
                    setTop(&merged, "status", updated["status"])
                    updated = merged
                } else {
                    setTop(&updated, "status", current["status"])
                }
            }
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace", "name"] {
                setMeta(&updated, field, current["metadata"]?[field])
            }
            setMeta(&updated, "resourceVersion", .string(currentVersion))
            if updated == current || dryRun { return Self.json(200, route.present(updated)) }  // no-op or dry run: no new revision
            if current["metadata"]?["deletionTimestamp"] != nil && (updated["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty {
                return Self.json(200, route.present(state.record(resource, updated, type: "DELETED")))
            }
            return Self.json(200, route.present(state.record(resource, updated, type: "MODIFIED")))
        }
    }

    private func delete(_ route: Route, _ body: JSON?, dryRun: Bool) -> HTTPResponse {
        let key = FakeAPIState.key(route.namespace, route.name!)
        let resource = route.resource
        return state.withLock { state -> HTTPResponse in
            guard let current = state.objects[resource.qualifiedName]?[key] else { return Self.notFound(route) }
            if let preconditions = body?["preconditions"] {
                if let uid = preconditions["uid"]?.stringValue, uid != current["metadata"]?["uid"]?.stringValue {
                    return Self.status(409, "Precondition failed: UID in precondition: \(uid), UID in object meta: \(current["metadata"]?["uid"]?.stringValue ?? "")", reason: "Conflict")
                }
                if let version = preconditions["resourceVersion"]?.stringValue, version != current["metadata"]?["resourceVersion"]?.stringValue {
                    return Self.status(409, "Precondition failed: ResourceVersion in precondition: \(version), ResourceVersion in object meta: \(current["metadata"]?["resourceVersion"]?.stringValue ?? "")", reason: "Conflict")
                }
            }
            if dryRun { return Self.json(200, route.present(current)) }
            return Self.json(200, route.present(Self.deleteObject(&state, resource, current)))
        }
    }

    /// Finalizers pending: mark with deletionTimestamp (once) and keep; otherwise remove.
    static func deleteObject(_ state: inout FakeAPIState, _ resource: KubeResource, _ current: JSON) -> JSON {
        if !(current["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty {
            if current["metadata"]?["deletionTimestamp"] != nil { return current }
            var marked = current
            setMeta(&marked, "deletionTimestamp", .string(RFC3339.string(Date())))
            setMeta(&marked, "deletionGracePeriodSeconds", 0)
            return state.record(resource, marked, type: "MODIFIED")
        }
        return state.record(resource, current, type: "DELETED")
    }

    /// pods/eviction after k8s.io/kubernetes pkg/registry/core/pod/storage/eviction.go: terminal,
    /// pending and terminating pods skip the budget check; a budget with an empty selector matches
    /// nothing; more than one budget is a 500; no disruptions allowed is 429 with a
    /// DisruptionBudget cause. The fake computes disruptionsAllowed from the pods at once (the
    /// disruption controller's work upstream): healthy = Ready and not terminating.
    private func evict(_ route: Route, name: String, dryRun: Bool) -> HTTPResponse {
        guard route.resource == .pods, let namespace = route.namespace else { return Self.status(404, "not found", reason: "NotFound") }
        let key = FakeAPIState.key(namespace, name)
        return state.withLock { state -> HTTPResponse in
            guard let pod = state.objects["pods"]?[key] else { return Self.notFound(route) }
            let phase = pod["status"]?["phase"]?.stringValue ?? ""
            let skipBudget = ["Succeeded", "Failed", "Pending"].contains(phase) || pod["metadata"]?["deletionTimestamp"] != nil
            if !skipBudget {
                let labels = pod.labels
                let budgets = (state.objects["poddisruptionbudgets.policy"] ?? [:]).values.filter { pdb in
                    guard pdb["metadata"]?["namespace"]?.stringValue == namespace,
                          let selector = Self.labelSelector(pdb["spec"]?["selector"]), !selector.isEmpty else { return false }
                    return selector.matches(labels)
                }
                if budgets.count > 1 {
                    return Self.status(500, "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", reason: "InternalError")
                }
                if let pdb = budgets.first, let selector = Self.labelSelector(pdb["spec"]?["selector"]) {
                    let covered = (state.objects["pods"] ?? [:]).values.filter {
                        $0["metadata"]?["namespace"]?.stringValue == namespace && selector.matches($0.labels)
                    }
                    let healthy = covered.filter { Self.isHealthy($0) }.count
                    let expected = covered.count
                    var desired = 0
                    if let minAvailable = pdb["spec"]?["minAvailable"] {
                        desired = Self.scaled(minAvailable, of: expected)
                    } else if let maxUnavailable = pdb["spec"]?["maxUnavailable"] {
                        desired = max(0, expected - Self.scaled(maxUnavailable, of: expected))
                    }
                    let podIsHealthy = Self.isHealthy(pod)
                    let allowed = podIsHealthy ? healthy - desired : (healthy >= desired ? 1 : 0)
                    if allowed <= 0 {
                        let pdbName = pdb["metadata"]?["name"]?.stringValue ?? ""
                        let status = APIStatus(code: 429, reason: "TooManyRequests", message: "Cannot evict pod as it would violate the pod's disruption budget.",
                                               retryAfterSeconds: nil,
                                               causes: ["The disruption budget \(pdbName) needs \(desired) healthy pods and has \(healthy) currently"])
                        var json = status.json
                        if case .object(var object) = json, case .object(var details)? = object["details"] {
                            details["causes"] = .array([["reason": "DisruptionBudget", "message": .string(status.causes[0])]])
                            object["details"] = .object(details)
                            json = .object(object)
                        }
                        return Self.json(429, json)
                    }
                }
            }
            if !dryRun { _ = Self.deleteObject(&state, .pods, pod) }
            return Self.json(201, APIStatus(code: 201, status: "Success", reason: "", message: "").json)
        }
    }

    private func bind(_ route: Route, name: String, _ body: JSON?) -> HTTPResponse {
        guard let node = body?["target"]?["name"]?.stringValue, let namespace = route.namespace else {
            return Self.status(400, "binding target is required", reason: "BadRequest")
        }
        return state.withLock { state -> HTTPResponse in
            guard var pod = state.objects["pods"]?[FakeAPIState.key(namespace, name)] else { return Self.notFound(route) }
            if let current = pod["spec"]?["nodeName"]?.stringValue, !current.isEmpty {
                return Self.status(409, "pod \(name) is already assigned to node \"\(current)\"", reason: "Conflict")
            }
            var spec = pod["spec"]?.objectValue ?? JSONObject()
            spec["nodeName"] = .string(node)
            setTop(&pod, "spec", .object(spec))
            _ = state.record(.pods, pod, type: "MODIFIED")
            return Self.json(201, APIStatus(code: 201, status: "Success", reason: "", message: "").json)
        }
    }

    // MARK: - Helpers

    static func isHealthy(_ pod: JSON) -> Bool {
        guard pod["metadata"]?["deletionTimestamp"] == nil else { return false }
        return (pod["status"]?["conditions"]?.arrayValue ?? []).contains {
            $0["type"]?.stringValue == "Ready" && $0["status"]?.stringValue == "True"
        }
    }

    /// An IntOrString: an integer, or a percentage of `total` rounded up.
    static func scaled(_ value: JSON, of total: Int) -> Int {
        if let number = value.intValue { return number }
        if let text = value.stringValue, text.hasSuffix("%"), let percent = Int(text.dropLast()) {
            return (percent * total + 99) / 100
        }
        return 0
    }

    static func labelSelector(_ json: JSON?) -> FakeLabelSelectorSet? {
        guard let json else { return nil }
        var set = FakeLabelSelectorSet()
        for member in json["matchLabels"]?.objectValue ?? JSONObject() {
            if let value = member.value.stringValue { set.labels[member.key] = value }
        }
        for expression in json["matchExpressions"]?.arrayValue ?? [] {
            guard let requirement = LabelRequirement(json: expression) else { return nil }
            set.requirements.append(requirement)
        }
        return set
    }

    static func notFound(_ route: Route) -> HTTPResponse {
        status(404, "\(route.presented.qualifiedName) \"\(route.name ?? "")\" not found", reason: "NotFound",
               details: details(route.presented, name: route.name ?? ""))
    }

    /// `details` of a Status about one object, as k8s.io/apimachinery's NewNotFound, NewConflict and
    /// NewAlreadyExists fill them: the name, the group when not core, and the resource as "kind".
    static func details(_ resource: KubeResource, name: String) -> JSONObject {
        var details: JSONObject = ["name": .string(name)]
        if !resource.group.isEmpty { details["group"] = .string(resource.group) }
        details["kind"] = .string(resource.plural)
        return details
    }

    static func status(_ code: Int, _ message: String, reason: String? = nil, details: JSONObject? = nil) -> HTTPResponse {
        var status = APIStatus(code: code, reason: reason ?? APIStatus.reason(for: code), message: message).json
        if let details, case .object(var object) = status {
            object["details"] = .object(details)
            object["code"] = nil
            object["code"] = .number(code)  // last, where the apiserver writes it
            status = .object(object)
        }
        return json(code, status)
    }

    static func json(_ code: Int, _ value: JSON) -> HTTPResponse {
        HTTPResponse(status: code, headers: ["Content-Type": "application/json"], body: JSONWriter.bytes(value))
    }
}

/// A metav1.LabelSelector; empty means "matches nothing" for PDBs (eviction.go).
struct FakeLabelSelectorSet {
    var labels: [String: String] = [:]
    var requirements: [LabelRequirement] = []
    var isEmpty: Bool { labels.isEmpty && requirements.isEmpty }
    func matches(_ podLabels: [String: String]) -> Bool {
        LabelSelector(matchLabels: labels, matchExpressions: requirements).matches(podLabels)
    }
}
