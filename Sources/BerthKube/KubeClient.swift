import BerthModel
import BerthNet
import Foundation
import Logging
import Synchronization

/// List parameters (k8s.io/apimachinery metav1.ListOptions).
public struct ListOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?
    /// How `resourceVersion` is read (only with a resourceVersion, never with `continue`).
    public var resourceVersionMatch: ResourceVersionMatch?

    public enum ResourceVersionMatch: String, Sendable {
        /// Any state at least as new as `resourceVersion` (the apiserver may answer from its watch cache).
        case notOlderThan = "NotOlderThan"
        /// Exactly the state at `resourceVersion`.
        case exact = "Exact"
    }

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil,
                continueToken: String? = nil, resourceVersion: String? = nil, resourceVersionMatch: ResourceVersionMatch? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
        self.resourceVersionMatch = resourceVersionMatch
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let limit { items.append(("limit", String(limit))) }
        if let continueToken, !continueToken.isEmpty { items.append(("continue", continueToken)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        if let resourceVersionMatch, resourceVersion != nil { items.append(("resourceVersionMatch", resourceVersionMatch.rawValue)) }
        return items
    }
}

/// One page of a list.
public struct ObjectList: Sendable {
    public var items: [JSON]
    public var resourceVersion: String
    /// Non-empty when more pages follow.
    public var continueToken: String
    public var remainingItemCount: Int?
}

public enum PatchType: String, Sendable {
    case merge = "application/merge-patch+json"
    case strategicMerge = "application/strategic-merge-patch+json"
    case json = "application/json-patch+json"
}

/// A Kubernetes API client over BerthNet's blocking HTTPS client. Calls block the calling thread
/// (the provisioner makes few requests; watches run on their own threads, see `Informer`).
/// Every request goes through the client-side rate limiter and is retried with backoff when the
/// apiserver asks for it (429/5xx with Retry-After, as client-go does) or the connection is lost
/// before a safe request got an answer.
public final class KubeClient: Sendable {
    public let configuration: KubeClientConfiguration
    public let credentials: CredentialSource
    /// The HTTP client and the exec-plugin certificate it was built with; replaced when the
    /// plugin hands out a new certificate (existing watches keep their connection).
    private let transport: Mutex<(client: HTTPClient, certificate: ExecCertificate?)>
    let limiter: RateLimiter
    let logger: Logger

    public init(_ configuration: KubeClientConfiguration, credentials: CredentialSource? = nil,
                logger: Logger = Logger(label: "berth.kube")) throws(KubeError) {
        self.configuration = configuration
        self.credentials = credentials ?? CredentialSource(configuration.credentials)
        self.logger = logger
        limiter = RateLimiter(qps: configuration.qps, burst: configuration.burst)
        transport = Mutex((try Self.makeHTTPClient(configuration, certificate: nil), nil))
    }

    private static func makeHTTPClient(_ configuration: KubeClientConfiguration, certificate: ExecCertificate?) throws(KubeError) -> HTTPClient {
        var tls = configuration.tls
        if let certificate {
            guard tls != nil else {
                throw .configuration(source: "exec credential plugin", message: "a client certificate needs an https server")
            }
            tls?.clientCertificatePEM = certificate.certificatePEM
            tls?.clientKeyPEM = certificate.keyPEM
        }
        var http = HTTPClientConfiguration(host: configuration.host, port: configuration.port, tls: tls)
        http.readTimeout = configuration.timeout
        http.proxy = configuration.proxy
        do throws(NetError) {
            return try HTTPClient(http)
        } catch {
            throw .configuration(source: certificate == nil ? "TLS client" : "exec credential plugin certificate", message: "\(error)")
        }
    }

    /// The HTTP client for the current credentials (rebuilt when an exec certificate rotates).
    func http(certificate: ExecCertificate?) throws(KubeError) -> HTTPClient {
        try transport.withLock { current throws(KubeError) -> HTTPClient in
            if current.certificate == certificate { return current.client }
            let client = try Self.makeHTTPClient(configuration, certificate: certificate)
            current = (client, certificate)
            return client
        }
    }

    /// Connections opened so far by the current HTTP client (tests check keep-alive reuse).
    public var connectionsOpened: Int { transport.withLock { $0.client.connectionsOpened } }

    // MARK: - Operations

    public func get(_ resource: KubeResource, namespace: String? = nil, name: String) throws(KubeError) -> JSON {
        try request("GET", resource.path(namespace: namespace, name: name))
    }

    /// One page. With `selection`, each item keeps only what it names (the page is read as a
    /// tape and the rest skipped, never built).
    public func list(_ resource: KubeResource, namespace: String? = nil, options: ListOptions = .init(),
                     selecting selection: JSONSelection? = nil) throws(KubeError) -> ObjectList {
        let target = resource.path(namespace: namespace) + PathEncoding.query(options.queryItems)
        let json: JSON
        if let selection {
            let response = try perform("GET", target, body: [], contentType: "application/json")
            let path = resource.path(namespace: namespace)
            guard (200..<300).contains(response.status) else {
                throw .status(APIStatus.from(httpStatus: response.status, body: response.body), method: "GET", path: path)
            }
            do throws(JSONError) {
                let tape = try JSONTape(parsing: response.body, selecting: .members(["metadata": .all, "items": .elements(selection)]))
                json = tape.root.json
            } catch {
                throw .decoding(what: "the answer to GET \(path)", detail: "\(error)")
            }
        } else {
            json = try request("GET", target)
        }
        guard case .object = json, let items = json["items"]?.arrayValue ?? (json["items"]?.isNull == true ? [] : nil) else {
            throw .decoding(what: "\(resource.kind)List", detail: "items: expected a list, found \(json["items"]?.typeName ?? "nothing")")
        }
        return ObjectList(items: items, resourceVersion: json["metadata"]?["resourceVersion"]?.stringValue ?? "",
                          continueToken: json["metadata"]?["continue"]?.stringValue ?? "",
                          remainingItemCount: json["metadata"]?["remainingItemCount"]?.intValue)
    }

    /// Every page, following `continue`; the resourceVersion is the first page's (the snapshot's).
    /// Later pages carry only the token (the apiserver refuses a resourceVersion with it). When
    /// the token expires mid-way (410), the list starts over once from the latest state, as
    /// client-go's pager does.
    public func listAll(_ resource: KubeResource, namespace: String? = nil, options: ListOptions = .init(), pageSize: Int = 500,
                        selecting selection: JSONSelection? = nil) throws(KubeError) -> ObjectList {
        var items: [JSON] = []
        let resourceVersion = try listEachPage(resource, namespace: namespace, options: options, pageSize: pageSize, selecting: selection) {
            (page: ObjectList) throws(KubeError) -> Void in items += page.items
        }
        return ObjectList(items: items, resourceVersion: resourceVersion, continueToken: "", remainingItemCount: nil)
    }

    /// Every page in turn, handed to `body` as it arrives (a cache built page by page never holds
    /// the whole list twice; the first page's `remainingItemCount` says how many follow); returns
    /// the list's resourceVersion. `restart` is called before the
    /// pages of a list started over after an expired continue token (the earlier pages are void).
    public func listEachPage(_ resource: KubeResource, namespace: String? = nil, options: ListOptions = .init(), pageSize: Int = 500,
                             selecting selection: JSONSelection? = nil, restart: () -> Void = {},
                             _ body: (ObjectList) throws(KubeError) -> Void) throws(KubeError) -> String {
        do throws(KubeError) {
            return try listPages(resource, namespace: namespace, options: options, pageSize: pageSize, selection: selection, body)
        } catch {
            guard error.isGone, error.reason == "Expired" else { throw error }
            logger.info("continue token expired; listing again", metadata: ["resource": "\(resource)"])
            restart()
            var fresh = options
            fresh.resourceVersion = nil
            fresh.resourceVersionMatch = nil
            return try listPages(resource, namespace: namespace, options: fresh, pageSize: pageSize, selection: selection, body)
        }
    }

    private func listPages(_ resource: KubeResource, namespace: String?, options: ListOptions, pageSize: Int,
                           selection: JSONSelection?, _ body: (ObjectList) throws(KubeError) -> Void) throws(KubeError) -> String {
        var options = options
        options.limit = pageSize
        let first = try list(resource, namespace: namespace, options: options, selecting: selection)
        try body(first)
        var token = first.continueToken
        while !token.isEmpty {
            options.continueToken = token
            options.resourceVersion = nil
            options.resourceVersionMatch = nil
            let page = try list(resource, namespace: namespace, options: options, selecting: selection)
            try body(page)
            token = page.continueToken
        }
        return first.resourceVersion
    }

    public func create(_ resource: KubeResource, namespace: String? = nil, _ object: JSON) throws(KubeError) -> JSON {
        try request("POST", resource.path(namespace: namespace), body: object)
    }

    /// PUT: fails with 409 Conflict when `metadata.resourceVersion` is stale.
    public func update(_ resource: KubeResource, namespace: String? = nil, _ object: JSON, subresource: String? = nil) throws(KubeError) -> JSON {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        return try request("PUT", resource.path(namespace: namespace, name: name, subresource: subresource), body: object)
    }

    public func updateStatus(_ resource: KubeResource, namespace: String? = nil, _ object: JSON) throws(KubeError) -> JSON {
        try update(resource, namespace: namespace, object, subresource: "status")
    }

    public func patch(_ resource: KubeResource, namespace: String? = nil, name: String, _ patch: JSON,
                      type: PatchType = .merge, subresource: String? = nil) throws(KubeError) -> JSON {
        try request("PATCH", resource.path(namespace: namespace, name: name, subresource: subresource), body: patch, contentType: type.rawValue)
    }

    /// DELETE with optional preconditions (409 Conflict when the object's uid or
    /// resourceVersion differ). Returns the answer (the object, still present with a
    /// deletionTimestamp while finalizers remain, or a Status).
    @discardableResult
    public func delete(_ resource: KubeResource, namespace: String? = nil, name: String,
                       preconditionUID: String? = nil, preconditionResourceVersion: String? = nil,
                       gracePeriodSeconds: Int? = nil) throws(KubeError) -> JSON {
        var options: JSONObject = ["kind": "DeleteOptions", "apiVersion": "v1"]
        var preconditions = JSONObject()
        if let preconditionUID { preconditions["uid"] = .string(preconditionUID) }
        if let preconditionResourceVersion { preconditions["resourceVersion"] = .string(preconditionResourceVersion) }
        if !preconditions.isEmpty { options["preconditions"] = .object(preconditions) }
        if let gracePeriodSeconds { options["gracePeriodSeconds"] = .number(gracePeriodSeconds) }
        return try request("DELETE", resource.path(namespace: namespace, name: name), body: .object(options))
    }

    /// Evicts a pod through `pods/eviction` (policy/v1). A PodDisruptionBudget that forbids it
    /// answers 429: that is `KubeError.evictionBlocked`, never retried here (the caller decides
    /// when to try again; upstream kubectl drain waits and retries).
    public func evict(namespace: String, name: String, gracePeriodSeconds: Int? = nil) throws(KubeError) {
        var eviction: JSONObject = ["apiVersion": "policy/v1", "kind": "Eviction",
                                    "metadata": ["name": .string(name), "namespace": .string(namespace)]]
        if let gracePeriodSeconds { eviction["deleteOptions"] = ["gracePeriodSeconds": .number(gracePeriodSeconds)] }
        let path = KubeResource.pods.path(namespace: namespace, name: name, subresource: "eviction")
        do throws(KubeError) {
            _ = try request("POST", path, body: .object(eviction), retryTooManyRequests: false)
        } catch {
            if case .status(let status, _, _) = error, status.code == 429 {
                throw .evictionBlocked(status, namespace: namespace, name: name)
            }
            throw error
        }
    }

    /// Reads, changes and writes an object, retrying on 409 Conflict with a fresh read
    /// (client-go's retry.RetryOnConflict with DefaultRetry: 5 attempts).
    @discardableResult
    public func modify(_ resource: KubeResource, namespace: String? = nil, name: String, subresource: String? = nil,
                       attempts: Int = 5, _ change: (inout JSON) throws(KubeError) -> Void) throws(KubeError) -> JSON {
        var attempt = 0
        while true {
            attempt += 1
            var object = try get(resource, namespace: namespace, name: name)
            try change(&object)
            do throws(KubeError) {
                return try update(resource, namespace: namespace, object, subresource: subresource)
            } catch {
                guard error.isConflict, attempt < attempts else { throw error }
                logger.debug("conflict; retrying with a fresh read", metadata: ["object": "\(resource)/\(name)", "attempt": "\(attempt)"])
                Thread.sleep(forTimeInterval: 0.01 * Double(attempt))
            }
        }
    }

    /// Changes the list at `path` (say `spec.taints`) of an object Berth does not own, without a
    /// read-modify-write race: reads the object, computes the new list, and sends a JSON patch that
    /// first `test`s the list is still what was read (null when absent) and then replaces it.
    /// Anything else other writers change meanwhile is untouched; a change to that list makes the
    /// test fail (422) and the step is done again on a fresh read, up to `attempts` times. Returns
    /// the object as written, or as read when the list needs no change.
    @discardableResult
    public func patchList(_ resource: KubeResource, namespace: String? = nil, name: String, at path: [String], attempts: Int = 5,
                          _ change: ([JSON]) -> [JSON]) throws(KubeError) -> JSON {
        let pointer = JSONPointer(path)
        var attempt = 0
        while true {
            attempt += 1
            let object = try get(resource, namespace: namespace, name: name)
            var current: JSON? = object
            for key in path { current = current?[key] }
            if let current, !current.isNull, current.arrayValue == nil {
                throw .decoding(what: "\(resource.kind) \(name)", detail: "\(pointer): expected a list, found \(current.typeName)")
            }
            let list = current?.arrayValue ?? []
            let updated = change(list)
            if updated == list { return object }
            let present = current.map { !$0.isNull } ?? false
            let patch: JSON = [
                ["op": "test", "path": .string(pointer.description), "value": present ? .array(list) : .null],
                ["op": present ? "replace" : "add", "path": .string(pointer.description), "value": .array(updated)],
            ]
            do throws(KubeError) {
                return try self.patch(resource, namespace: namespace, name: name, patch, type: .json)
            } catch {
                guard error.statusCode == 422, attempt < attempts else { throw error }
                logger.debug("list changed by another writer; patching again from a fresh read",
                             metadata: ["object": "\(resource)/\(name)", "path": "\(pointer)", "attempt": "\(attempt)"])
            }
        }
    }

    /// Records an events.k8s.io/v1 Event about `regarding` (an object's JSON).
    @discardableResult
    public func recordEvent(regarding object: JSON, type: String = "Normal", reason: String, action: String, note: String,
                            reportingController: String = "berth.dev/provisioner", reportingInstance: String,
                            now: Date = Date()) throws(KubeError) -> JSON {
        let meta = try ObjectMeta(json: object["metadata"])
        let namespace = meta.namespace.isEmpty ? "default" : meta.namespace
        var regarding: JSONObject = [:]
        for key in ["apiVersion", "kind"] { if let value = object[key] { regarding[key] = value } }
        regarding["name"] = .string(meta.name)
        if !meta.namespace.isEmpty { regarding["namespace"] = .string(meta.namespace) }
        if !meta.uid.isEmpty { regarding["uid"] = .string(meta.uid) }
        if !meta.resourceVersion.isEmpty { regarding["resourceVersion"] = .string(meta.resourceVersion) }
        // Upstream recorders name events <object>.<unique hex> (k8s.io/client-go/tools/events).
        let suffix = String(UInt64(now.timeIntervalSince1970 * 1e9), radix: 16)
        let event: JSON = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": .string("\(meta.name).\(suffix)"), "namespace": .string(namespace)],
            "eventTime": .string(RFC3339.string(now, micro: true)),
            "reportingController": .string(reportingController), "reportingInstance": .string(reportingInstance),
            "action": .string(action), "reason": .string(reason), "type": .string(type),
            "note": .string(String(note.prefix(1024))),
            "regarding": .object(regarding),
        ]
        return try create(.events, namespace: namespace, event)
    }

    // MARK: - Requests

    /// One API call: rate limit, authentication, retries; decodes the JSON answer or throws the
    /// apiserver's Status.
    public func request(_ method: String, _ target: String, body: JSON? = nil, contentType: String = "application/json",
                        retryTooManyRequests: Bool = true) throws(KubeError) -> JSON {
        let response = try perform(method, target, body: body.map { JSONWriter.bytes($0) } ?? [], contentType: contentType,
                                   retryTooManyRequests: retryTooManyRequests)
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        guard (200..<300).contains(response.status) else {
            throw .status(APIStatus.from(httpStatus: response.status, body: response.body), method: method, path: path)
        }
        do throws(JSONError) {
            return try JSONParser.parse(response.body)
        } catch {
            throw .decoding(what: "the answer to \(method) \(path)", detail: "\(error)")
        }
    }

    func perform(_ method: String, _ target: String, body: [UInt8], contentType: String,
                 retryTooManyRequests: Bool = true, timeout: Duration? = nil) throws(KubeError) -> HTTPClientResponse {
        var attempt = 0
        var refreshedCredentials = false
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        while true {
            attempt += 1
            let (request, http) = try prepare(method, target, body: body, contentType: contentType)
            limiter.acquire()
            let response: HTTPClientResponse
            do throws(NetError) {
                response = try http.execute(request, timeout: timeout)
            } catch {
                // A connection that could not be opened never carried the request; a safe
                // (GET) request may always be repeated (client-go's IsRetryableError + IsConnectionReset).
                let neverSent: Bool
                if case .connect = error { neverSent = true } else { neverSent = false }
                guard attempt < configuration.maxAttempts, neverSent || method == "GET" else {
                    throw .transport(error, method: method, path: path)
                }
                let wait = backoff(attempt)
                logger.debug("request failed; retrying", metadata: ["path": "\(path)", "error": "\(error)", "wait": "\(wait)"])
                Thread.sleep(forTimeInterval: wait)
                continue
            }
            if response.status == 401 && credentials.canRefresh && !refreshedCredentials {
                refreshedCredentials = true
                credentials.invalidate()
                continue
            }
            // client-go (rest.Request.checkWait): 429 and 5xx are retried when the server sends Retry-After.
            let retryable = (response.status == 429 && retryTooManyRequests) || (response.status >= 500 && response.status != 501)
            if retryable, attempt < configuration.maxAttempts, let after = response.headers["Retry-After"], let seconds = Double(after.trimmingCharacters(in: .whitespaces)) {
                let cap = configuration.maxRetryWait.seconds
                let wait = min(max(seconds, 0), cap)
                logger.debug("server asked to retry", metadata: ["path": "\(path)", "status": "\(response.status)", "wait": "\(wait)"])
                Thread.sleep(forTimeInterval: wait)
                continue
            }
            return response
        }
    }

    /// The request with current credentials, and the HTTP client presenting the current
    /// client certificate.
    func prepare(_ method: String, _ target: String, body: [UInt8], contentType: String) throws(KubeError) -> (HTTPClientRequest, HTTPClient) {
        let (authorization, certificate) = try credentials.current()
        var headers: HTTPHeaders = ["Accept": "application/json", "User-Agent": configuration.userAgent]
        if !body.isEmpty { headers.add(name: "Content-Type", value: contentType) }
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        return (HTTPClientRequest(method: method, target: configuration.pathPrefix + target, headers: headers, body: body),
                try http(certificate: certificate))
    }

    /// Exponential backoff with jitter: 0.1 s, 0.2 s, 0.4 s ... capped at 5 s.
    func backoff(_ attempt: Int) -> TimeInterval {
        let base = min(5.0, 0.1 * pow(2, Double(attempt - 1)))
        return base * Double.random(in: 0.8...1.2)
    }
}
