import BerthModel

/// Patches as the apiserver applies them (a test double's version).
enum FakePatch {
    /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
    static func merge(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? JSONObject()
        for member in patchObject {
            if member.value.isNull {
                result[member.key] = nil
            } else {
                result[member.key] = merge(result[member.key] ?? .null, member.value)
            }
        }
        return .object(result)
    }

    /// Strategic merge patch, the subset Berth uses: like a merge patch, except the lists
    /// upstream tags with a patch strategy of "merge" (k8s.io/api struct tags
    /// `patchStrategy:"merge" patchMergeKey:...`) merge by their key instead of being replaced.
    /// Directives (`$patch`, `$retainKeys`, `$deleteFromPrimitiveList`) are refused.
    static func strategic(_ target: JSON, _ patch: JSON, path: String = "") throws(FakePatchError) -> JSON {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? JSONObject()
        for member in patchObject {
            let childPath = path.isEmpty ? member.key : "\(path).\(member.key)"
            if member.key.hasPrefix("$setElementOrder/") { continue }
            if member.key.hasPrefix("$") { throw FakePatchError(message: "strategic merge directive \(member.key) is not supported by the fake apiserver") }
            if member.value.isNull { result[member.key] = nil; continue }
            if case .array(let items) = member.value, let mergeKey = mergeKeys[childPath] {
                let existing = result[member.key]?.arrayValue ?? []
                result[member.key] = .array(mergeList(existing, items, key: mergeKey))
            } else {
                result[member.key] = try strategic(result[member.key] ?? .null, member.value, path: childPath)
            }
        }
        return .object(result)
    }

    /// RFC 6902 as the apiserver applies it (github.com/evanphx/json-patch): one operation at a
    /// time; a `test` with a null value passes where the member is missing or null (what clients
    /// use to say "only if nobody set it"). A patch that is not a list of operations is a 400; one
    /// that does not apply, a 422 naming the operation.
    static func json(_ target: JSON, _ patch: JSON) throws -> JSON {
        guard let operations = patch.arrayValue else { throw FakePatchError(message: "json: cannot unmarshal object into Go value of type jsonpatch.Patch") }
        var document = target
        for operation in operations {
            let single: JSONPatch
            do { single = try JSONPatch(json: .array([operation])) } catch { throw FakePatchError(message: "\(error)") }
            guard let op = single.operations.first else { continue }
            if op.op == .test, op.value?.isNull ?? true {
                guard resolve(document, Array(op.path.tokens.dropLast())) != nil else {
                    throw FakePatchApplyError(message: "test operation does not apply: is missing path: \(op.path)")
                }
                let found = resolve(document, op.path.tokens)
                guard found == nil || found?.isNull == true else { throw FakePatchApplyError(message: "testing value \(op.path) failed") }
                continue
            }
            do {
                document = try single.apply(to: document)
            } catch {
                let verb = op.op == .test ? "testing value \(op.path) failed" : "\(op.op.rawValue) operation does not apply: \(error)"
                throw FakePatchApplyError(message: verb)
            }
        }
        return document
    }

    private static func resolve(_ document: JSON, _ tokens: [String]) -> JSON? {
        var current = document
        for token in tokens {
            if let array = current.arrayValue {
                guard let index = Int(token), array.indices.contains(index) else { return nil }
                current = array[index]
            } else {
                guard let next = current[token] else { return nil }
                current = next
            }
        }
        return current
    }

    /// Field path → merge key ("" merges a list of scalars as a set).
    static let mergeKeys: [String: String] = [
        "metadata.finalizers": "",
        "metadata.ownerReferences": "uid",
        "status.conditions": "type",
        "spec.containers": "name",
        "spec.initContainers": "name",
        "status.addresses": "type",
    ]

    private static func mergeList(_ existing: [JSON], _ patch: [JSON], key: String) -> [JSON] {
        var result = existing
        for item in patch {
            if key.isEmpty {
                if !result.contains(item) { result.append(item) }
            } else if let id = item[key], let index = result.firstIndex(where: { $0[key] == id }) {
                result[index] = merge(result[index], item)
            } else {
                result.append(item)
            }
        }
        return result
    }
}

struct FakePatchError: Error {
    var message: String
}

/// A well-formed patch that does not apply to the object (the apiserver's 422).
struct FakePatchApplyError: Error {
    var message: String
}
