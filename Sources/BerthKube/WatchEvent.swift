import BerthModel

/// One line of a watch stream: `{"type": "ADDED", "object": {...}}` (metav1.WatchEvent).
public struct WatchEvent: Sendable {
    public enum Kind: String, Sendable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR"
    }
    public var kind: Kind
    /// The object (for ERROR, a Status).
    public var object: JSON

    public init(kind: Kind, object: JSON) {
        self.kind = kind
        self.object = object
    }

    /// `metadata.resourceVersion` of the object ("" when absent).
    public var resourceVersion: String { object["metadata"]?["resourceVersion"]?.stringValue ?? "" }

    /// The Status of an ERROR event.
    public var status: APIStatus? { kind == .error ? APIStatus(json: object) : nil }

    /// Decodes one line; the error names what was wrong and shows the start of the line.
    public static func decode(_ line: [UInt8]) throws(KubeError) -> WatchEvent {
        let json: JSON
        do throws(JSONError) {
            json = try JSONParser.parse(line)
        } catch {
            throw .decoding(what: "watch event", detail: "\(error); line starts \(excerpt(line))")
        }
        guard case .object = json else {
            throw .decoding(what: "watch event", detail: "expected an object, found \(json.typeName)")
        }
        guard let typeValue = json["type"] else {
            throw .decoding(what: "watch event", detail: "type is missing")
        }
        guard let type = typeValue.stringValue else {
            throw .decoding(what: "watch event", detail: "type: expected a string, found \(typeValue.typeName)")
        }
        guard let kind = Kind(rawValue: type) else {
            throw .decoding(what: "watch event", detail: "unknown type \"\(type)\"")
        }
        guard let object = json["object"], case .object = object else {
            throw .decoding(what: "watch event", detail: "object: expected an object, found \(json["object"]?.typeName ?? "nothing")")
        }
        return WatchEvent(kind: kind, object: object)
    }

    /// Decodes one line keeping only what `selection` names of the object (plus what a watch
    /// needs of every object: the type, and the Status of an ERROR event whole). The rest of the
    /// line is checked and skipped, never built: a cache of projections costs what it keeps.
    public static func decode(_ line: [UInt8], selecting selection: JSONSelection) throws(KubeError) -> WatchEvent {
        let tape: JSONTape
        do throws(JSONError) {
            tape = try JSONTape(parsing: line, selecting: .members(["type": .all, "object": selection]))
        } catch {
            throw .decoding(what: "watch event", detail: "\(error); line starts \(excerpt(line))")
        }
        let root = tape.root
        guard root.isObject else { throw .decoding(what: "watch event", detail: "expected an object, found \(root.typeName)") }
        guard let typeValue = root["type"] else { throw .decoding(what: "watch event", detail: "type is missing") }
        guard let type = typeValue.stringValue else {
            throw .decoding(what: "watch event", detail: "type: expected a string, found \(typeValue.typeName)")
        }
        guard let kind = Kind(rawValue: type) else { throw .decoding(what: "watch event", detail: "unknown type \"\(type)\"") }
        if kind == .error { return try decode(line) }
        guard let object = root["object"], object.isObject else {
            throw .decoding(what: "watch event", detail: "object: expected an object, found \(root["object"]?.typeName ?? "nothing")")
        }
        return WatchEvent(kind: kind, object: object.json)
    }

    static func excerpt(_ line: [UInt8]) -> String {
        let text = String(decoding: line.prefix(60), as: UTF8.self)
        return "\"\(text)\"" + (line.count > 60 ? "..." : "")
    }
}

/// Watch parameters (metav1.ListOptions with watch=true).
public struct WatchOptions: Sendable {
    public var resourceVersion: String
    public var labelSelector: String?
    public var fieldSelector: String?
    public var allowWatchBookmarks = true
    /// The server ends the watch after this long (the client then resumes).
    public var timeoutSeconds: Int?

    public init(resourceVersion: String, labelSelector: String? = nil, fieldSelector: String? = nil,
                allowWatchBookmarks: Bool = true, timeoutSeconds: Int? = nil) {
        self.resourceVersion = resourceVersion
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.allowWatchBookmarks = allowWatchBookmarks
        self.timeoutSeconds = timeoutSeconds
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = [("watch", "true"), ("resourceVersion", resourceVersion)]
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if allowWatchBookmarks { items.append(("allowWatchBookmarks", "true")) }
        if let timeoutSeconds { items.append(("timeoutSeconds", String(timeoutSeconds))) }
        return items
    }
}
