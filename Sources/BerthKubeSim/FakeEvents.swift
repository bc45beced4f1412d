import BerthModel

/// One Event store served under both `core/v1` and `events.k8s.io/v1`, as the apiserver serves
/// one storage through both APIs: objects are kept in the events.k8s.io/v1 shape and converted
/// field by field on the way in and out (after k8s.io/kubernetes pkg/apis/events/v1 conversion):
/// regarding ⇄ involvedObject, note ⇄ message, reportingController ⇄ reportingComponent,
/// deprecatedSource ⇄ source, deprecatedFirstTimestamp/LastTimestamp/Count ⇄
/// firstTimestamp/lastTimestamp/count; the rest (reason, type, action, related, series,
/// eventTime, reportingInstance, metadata) is common.
enum FakeEvents {
    private static let renames: [(v1: String, core: String)] = [
        ("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
        ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
    ]

    /// An events.k8s.io/v1 Event as core/v1 shows it.
    static func toCore(_ event: JSON) -> JSON {
        guard case .object(let object) = event else { return event }
        var result = JSONObject()
        for member in object {
            switch member.key {
            case "apiVersion": result["apiVersion"] = "v1"
            default:
                let name = renames.first { $0.v1 == member.key }?.core ?? member.key
                result[name] = member.value
            }
        }
        if result["apiVersion"] == nil { result["apiVersion"] = "v1" }
        if result["involvedObject"] == nil { result["involvedObject"] = .object([:]) }
        // core/v1 always has these (Go fields without omitempty).
        for field in ["reportingComponent", "reportingInstance"] where result[field] == nil { result[field] = "" }
        if result["source"] == nil { result["source"] = .object([:]) }
        if result["firstTimestamp"] == nil { result["firstTimestamp"] = .null }
        if result["lastTimestamp"] == nil { result["lastTimestamp"] = .null }
        return .object(result)
    }

    /// A core/v1 Event in the stored (events.k8s.io/v1) shape.
    static func fromCore(_ event: JSON) -> JSON {
        guard case .object(let object) = event else { return event }
        var result = JSONObject()
        for member in object {
            switch member.key {
            case "apiVersion": result["apiVersion"] = "events.k8s.io/v1"
            default:
                let name = renames.first { $0.core == member.key }?.v1 ?? member.key
                if member.value.isNull { continue }
                if name == "deprecatedSource", member.value.objectValue?.isEmpty == true { continue }
                if ["reportingController", "reportingInstance"].contains(name), member.value.stringValue == "" { continue }
                result[name] = member.value
            }
        }
        return .object(result)
    }

    /// A field selector term on a core/v1 Event names the core field: `involvedObject.uid`,
    /// `source`, `reportingComponent` ... (pkg/registry/core/event ToSelectableFields). Selectors
    /// are evaluated on the object as the client sees it, so nothing needs translating.
    static let coreSelectableFields: Set<String> = [
        "metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    ]
}
