import BerthModel

/// Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), for
/// the kinds kubectl sends that way: its typed clients post SelfSubjectAccessReviews (`auth
/// can-i`), Evictions (`drain`) and DeleteOptions as protobuf and do not fall back to JSON. The
/// envelope is upstream's: the bytes `k8s\0`, then a runtime.Unknown message (1: typeMeta
/// {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose `raw` is the object.
/// Only the fields those kinds carry are read (field numbers from k8s.io/api's generated.proto);
/// any other kind is refused by the caller with 415, and the answer is JSON, which clients accept.
enum FakeProtobuf {
    struct DecodeError: Error {
        var message: String
    }

    /// The object as JSON, or nil when the kind is not one the fake reads.
    static func decode(_ body: [UInt8]) throws(DecodeError) -> JSON? {
        guard body.count >= 4, body[0] == 0x6b, body[1] == 0x38, body[2] == 0x73, body[3] == 0 else {
            throw DecodeError(message: "missing the k8s protobuf envelope")
        }
        let unknown = try fields(Array(body[4...]))
        let typeMeta = try fields(unknown[1]?.first?.bytes ?? [])
        let apiVersion = typeMeta[1]?.first?.string ?? ""
        let kind = typeMeta[2]?.first?.string ?? ""
        let raw = try fields(unknown[2]?.first?.bytes ?? [])
        switch (apiVersion, kind) {
        case ("authorization.k8s.io/v1", "SelfSubjectAccessReview"):
            let spec = try fields(raw[2]?.first?.bytes ?? [])
            var specJSON = JSONObject()
            if let attributes = spec[1]?.first?.bytes {
                let fields = try fields(attributes)
                var object = JSONObject()
                for (number, name) in [(1, "namespace"), (2, "verb"), (3, "group"), (4, "version"), (5, "resource"), (6, "subresource"), (7, "name")] {
                    if let value = fields[number]?.first?.string { object[name] = .string(value) }
                }
                specJSON["resourceAttributes"] = .object(object)
            }
            if let attributes = spec[2]?.first?.bytes {
                let fields = try fields(attributes)
                specJSON["nonResourceAttributes"] = ["path": .string(fields[1]?.first?.string ?? ""), "verb": .string(fields[2]?.first?.string ?? "")]
            }
            return ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": try metadata(raw[1]?.first?.bytes), "spec": .object(specJSON)]
        case ("policy/v1", "Eviction"), ("policy/v1beta1", "Eviction"):
            var object: JSONObject = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": try metadata(raw[1]?.first?.bytes)]
            if let options = raw[2]?.first?.bytes { object["deleteOptions"] = try deleteOptions(fields(options)) }
            return .object(object)
        case ("meta.k8s.io/v1", "DeleteOptions"), ("v1", "DeleteOptions"):
            var object = try deleteOptions(raw)
            if case .object(var members) = object {
                members["apiVersion"] = .string(apiVersion)
                members["kind"] = .string(kind)
                object = .object(members)
            }
            return object
        default:
            return nil
        }
    }

    private static func metadata(_ bytes: [UInt8]?) throws(DecodeError) -> JSON {
        guard let bytes else { return .object([:]) }
        let fields = try fields(bytes)
        var object = JSONObject()
        if let name = fields[1]?.first?.string { object["name"] = .string(name) }
        if let namespace = fields[3]?.first?.string { object["namespace"] = .string(namespace) }
        return .object(object)
    }

    private static func deleteOptions(_ fields: [Int: [Value]]) throws(DecodeError) -> JSON {
        var object = JSONObject()
        if let grace = fields[1]?.first?.varint { object["gracePeriodSeconds"] = .number(String(Int64(bitPattern: grace))) }
        if let preconditions = fields[2]?.first?.bytes {
            let inner = try self.fields(preconditions)
            var precondition = JSONObject()
            if let uid = inner[1]?.first?.string { precondition["uid"] = .string(uid) }
            if let version = inner[2]?.first?.string { precondition["resourceVersion"] = .string(version) }
            object["preconditions"] = .object(precondition)
        }
        if let policy = fields[4]?.first?.string { object["propagationPolicy"] = .string(policy) }
        if let dryRun = fields[5] { object["dryRun"] = .array(dryRun.compactMap(\.string).map { .string($0) }) }
        return .object(object)
    }

    enum Value {
        case varint(UInt64)
        case bytes([UInt8])
        case fixed

        var bytes: [UInt8]? { if case .bytes(let value) = self { value } else { nil } }
        var string: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
        var varint: UInt64? { if case .varint(let value) = self { value } else { nil } }
    }

    /// A message's fields by number, in order.
    static func fields(_ bytes: [UInt8]) throws(DecodeError) -> [Int: [Value]] {
        var result: [Int: [Value]] = [:]
        var index = 0
        func varint() throws(DecodeError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard index < bytes.count, shift < 64 else { throw DecodeError(message: "truncated varint") }
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while index < bytes.count {
            let key = try varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: result[number, default: []].append(.varint(try varint()))
            case 1:
                guard index + 8 <= bytes.count else { throw DecodeError(message: "truncated fixed64") }
                index += 8
                result[number, default: []].append(.fixed)
            case 2:
                let length = Int(clamping: try varint())
                guard length >= 0, index + length <= bytes.count else { throw DecodeError(message: "field \(number) runs past the end") }
                result[number, default: []].append(.bytes(Array(bytes[index..<(index + length)])))
                index += length
            case 5:
                guard index + 4 <= bytes.count else { throw DecodeError(message: "truncated fixed32") }
                index += 4
                result[number, default: []].append(.fixed)
            default:
                throw DecodeError(message: "wire type \(key & 7) of field \(number) is not supported")
            }
        }
        return result
    }
}
