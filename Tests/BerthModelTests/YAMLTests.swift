import BerthModel
import Testing

@Suite struct YAMLTests {
    @Test func keepsKubernetesTypes() throws {
        let documents = try YAMLReader.documents("""
            count: 1
            price: 1.50
            quoted: "true"
            flag: true
            yes11: yes
            nothing: null
            octal: 0o17
            version: "1.0"
            date: 2026-11-30
            ---
            - a
            """)
        #expect(documents.count == 2)
        #expect(documents[1].line == 11)
        let first = documents[0].value
        #expect(first["count"] == .number("1"))
        #expect(first["price"] == .number("1.50"))
        #expect(first["quoted"] == .string("true"))
        #expect(first["flag"] == .bool(true))
        #expect(first["yes11"] == .bool(true))
        #expect(first["nothing"] == .null)
        #expect(first["octal"] == .number("15"))
        #expect(first["version"] == .string("1.0"))
        #expect(first["date"] == .string("2026-11-30"))
    }

    /// YAML 1.1 base-60 integers, as sigs.k8s.io/yaml reads them; the largest still fit in Int
    /// (Yams' own arithmetic traps on the last one: its running power of 60 overflows).
    @Test func readsBase60Integers() throws {
        let value = try YAMLReader.document("time: 190:20:30\nnegative: -1:30\nbig: 1:0:0:0:0:0:0:0:0:0:0")
        #expect(value["time"] == .number("685230"))
        #expect(value["negative"] == .number("-90"))
        #expect(value["big"] == .number("604661760000000000"))
    }

    @Test(arguments: [
        ("a: [1, 2", "YAML syntax"),
        ("a: 1\na: 2", "duplicate key \"a\""),
        ("a: *x", "undefined alias"),
        ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]", "alias expansion"),
        ("a: .inf", "cannot be represented in JSON"),
        // Base 60 past Int: Yams' own arithmetic traps (found by the config fuzz target).
        ("a: 7777777777777777775:5", "integer \"7777777777777777775:5\" is out of range"),
        ("a: -2:0:0:0:0:0:0:0:0:0:0:0", "is out of range"),
    ])
    func rejectsWhatJSONCannotHold(text: String, reason: String) {
        let error = #expect(throws: YAMLError.self) { _ = try YAMLReader.documents(text) }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func writesWhatReadsBackIdentically() throws {
        let value: JSON = [
            "kind": "Pod",
            "metadata": ["labels": ["kubernetes_pod_operator": "True", "n": "1", "empty": "", "colon": "a: b", "dash": "-x"]],
            "spec": [
                "containers": [["name": "c", "args": ["--flag", "#comment", "yes", "null", "multi\nline"], "ports": [["containerPort": 8888]]]],
                "nested": [[1, 2], []],
                "emptyObject": [:],
                "ok": true,
            ],
        ]
        let text = YAMLWriter.string([value, ["second": 2]])
        let back = try YAMLReader.documents(text)
        #expect(back.map(\.value) == [value, ["second": 2]], "\(text)")
    }

    /// Characters JSON leaves raw in a quoted string but YAML does not: NEL, LS and PS are line
    /// breaks there (folded to a space, or breaking a key), DEL, the C1 controls and U+FFFE/FFFF
    /// are refused, U+FEFF is a byte-order mark. Found by the config fuzz target: a key with a PS
    /// in it was written so that it did not read back.
    @Test(arguments: [0x7F, 0x80, 0x85, 0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF] as [UInt32])
    func quotesWhatYAMLReadsAsABreakOrRefuses(code: UInt32) throws {
        let text = "a" + String(Character(try #require(Unicode.Scalar(code)))) + "b"
        let value: JSON = .object(JSONObject([JSONObject.Member(key: text, value: .string(text)), JSONObject.Member(key: "list", value: [.string(text)])]))
        let written = YAMLWriter.string([value])
        let back = try YAMLReader.documents(written)
        #expect(back.map(\.value) == [value], "\(written.debugDescription)")
    }
}

@Suite struct SchedulingSemanticsTests {
    static let gpuTaint = Taint(key: "nvidia.com/gpu", value: "true", effect: "NoSchedule")

    @Test(arguments: [
        (Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule"), true),
        (Toleration(key: "nvidia.com/gpu", operator: "Exists"), true),
        (Toleration(operator: "Exists"), true),
        (Toleration(key: "nvidia.com/gpu", operator: "Equal", value: "true", effect: "NoSchedule"), true),
        (Toleration(key: "nvidia.com/gpu", operator: "Equal", value: "false", effect: "NoSchedule"), false),
        (Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoExecute"), false),
        (Toleration(key: "hub.jupyter.org/dedicated", operator: "Exists"), false),
        (Toleration(key: "nvidia.com/gpu", operator: "", value: "true"), true),
    ])
    func tolerationsFollowUpstream(toleration: Toleration, tolerates: Bool) {
        #expect(toleration.tolerates(Self.gpuTaint) == tolerates)
    }

    @Test func requirementsAndSelectors() {
        let labels = ["zone": "a", "gpus": "4"]
        #expect(LabelRequirement(key: "zone", operator: .in, values: ["a", "b"]).matches(labels))
        #expect(!LabelRequirement(key: "zone", operator: .notIn, values: ["a"]).matches(labels))
        #expect(LabelRequirement(key: "missing", operator: .notIn, values: ["a"]).matches(labels))
        #expect(LabelRequirement(key: "gpus", operator: .gt, values: ["2"]).matches(labels))
        #expect(!LabelRequirement(key: "gpus", operator: .lt, values: ["2"]).matches(labels))
        #expect(!LabelRequirement(key: "zone", operator: .gt, values: ["2"]).matches(labels))
        #expect(LabelRequirement(key: "k", operator: .in, values: ["a", "b"]) == LabelRequirement(key: "k", operator: .in, values: ["b", "a"]))
        #expect(LabelSelector().matches([:]))
        #expect(LabelSelector(matchLabels: ["zone": "a"], matchExpressions: [.init(key: "gpus", operator: .exists)]).matches(labels))
        #expect(!LabelSelector(matchLabels: ["zone": "b"]).matches(labels))
    }

    @Test(arguments: [
        ("nvidia.com/gpu", "nvidia.com/gpu", true),
        ("nvidia.com/gpu", "nvidia.com/gpu.shared", false),
        ("nvidia.com/mig-*", "nvidia.com/mig-1g.10gb", true),
        ("nvidia.com/mig-*", "nvidia.com/gpu", false),
        ("*/gpu", "amd.com/gpu", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxc", false),
        ("ab*ba", "aba", false),
    ])
    func resourcePatterns(pattern: String, name: String, matches: Bool) {
        #expect(ResourcePattern(pattern).matches(name) == matches)
    }
}
