/// One pod of a trace: created at `arrival`, deleted `duration` seconds after it starts running.
public struct TracePod: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case notebook, job, service
    }

    public var arrival: Double
    public var duration: Double
    public var namespace: String
    public var name: String
    public var kind: Kind
    public var gpus: Int
    /// Karpenter's GPU name (`t4`, `a10g`, ...); empty: any.
    public var gpuType: String
    /// Cores.
    public var cpu: Double
    public var memoryGiB: Double
    /// Carries a tolerate-everything toleration (`operator: Exists`, no key), as many Airflow
    /// charts give their task pods: the pods that squat on GPU nodes.
    public var toleratesAll: Bool

    public init(
        arrival: Double, duration: Double, namespace: String, name: String, kind: Kind, gpus: Int = 0, gpuType: String = "",
        cpu: Double, memoryGiB: Double, toleratesAll: Bool = false
    ) {
        self.arrival = arrival
        self.duration = duration
        self.namespace = namespace
        self.name = name
        self.kind = kind
        self.gpus = gpus
        self.gpuType = gpuType
        self.cpu = cpu
        self.memoryGiB = memoryGiB
        self.toleratesAll = toleratesAll
    }

    public var key: String { "\(namespace)/\(name)" }
    public var isGPU: Bool { gpus > 0 }
}

/// A workload to replay, sorted by arrival.
public struct Trace: Sendable, Equatable {
    public static let columns = ["arrival_s", "duration_s", "namespace", "name", "kind", "gpus", "gpu_type", "cpu", "memory_gib"]
    /// Optional, after the required ones: `true` for a pod that tolerates every taint.
    public static let optionalColumns = ["tolerate_all"]

    public var pods: [TracePod]

    public init(pods: [TracePod]) {
        self.pods = pods.enumerated().sorted { ($0.element.arrival, $0.offset) < ($1.element.arrival, $1.offset) }.map(\.element)
    }

    public var gpuPods: Int { pods.count { $0.isGPU } }
    /// GPU-hours asked for: GPUs × run time.
    public var gpuHours: Double { pods.reduce(0) { $0 + Double($1.gpus) * $1.duration } / 3600 }
    /// When the last pod would finish if every pod ran at once.
    public var horizon: Double { pods.map { $0.arrival + $0.duration }.max() ?? 0 }

    // MARK: CSV

    /// Reads the CSV (header required, columns by name, any order; `tolerate_all` optional).
    /// - Throws: ``SimulationError/badTrace(source:line:field:message:)`` for the first bad line.
    public static func parse(csv text: String, source: String = "trace") throws(SimulationError) -> Trace {
        // Bytes, not Characters: a 50,000-row trace is read in milliseconds. A trailing "\r"
        // (CRLF files) is dropped with the spaces around each cell.
        var lines = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        func blank(_ line: ArraySlice<UInt8>) -> Bool { line.allSatisfy { $0 == 32 || $0 == 9 || $0 == 13 } }
        func cells(_ line: ArraySlice<UInt8>) -> [String] {
            line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { cell in
                var cell = cell
                while let first = cell.first, first == 32 || first == 9 { cell = cell.dropFirst() }
                while let last = cell.last, last == 32 || last == 9 || last == 13 { cell = cell.dropLast() }
                return String(decoding: cell, as: UTF8.self)
            }
        }
        while let last = lines.last, blank(last) { lines.removeLast() }
        guard let headerLine = lines.first, !blank(headerLine) else {
            throw .badTrace(source: source, line: 1, field: "header", message: "the trace is empty; expected the header \(columns.joined(separator: ","))")
        }
        let header = cells(headerLine)
        var position: [String: Int] = [:]
        for (index, name) in header.enumerated() {
            guard columns.contains(name) || optionalColumns.contains(name) else {
                throw .badTrace(source: source, line: 1, field: name.isEmpty ? "column \(index + 1)" : name,
                                message: "unknown column; expected \(columns.joined(separator: ",")) (and optionally tolerate_all)")
            }
            guard position[name] == nil else { throw .badTrace(source: source, line: 1, field: name, message: "column named twice") }
            position[name] = index
        }
        for column in columns where position[column] == nil {
            throw .badTrace(source: source, line: 1, field: column, message: "required column missing from the header")
        }
        var pods: [TracePod] = []
        pods.reserveCapacity(lines.count)
        var seen = Set<String>()
        for (offset, line) in lines.enumerated().dropFirst() {
            let lineNumber = offset + 1
            if blank(line) { continue }
            let cells = cells(line)
            guard cells.count == header.count else {
                throw .badTrace(source: source, line: lineNumber, field: "row", message: "has \(cells.count) fields, the header has \(header.count)")
            }
            func cell(_ name: String) -> String { position[name].map { cells[$0] } ?? "" }
            func numeric(_ name: String, minimum: Double, integer: Bool = false) throws(SimulationError) -> Double {
                let text = cell(name)
                guard let value = Double(text), value.isFinite else {
                    throw .badTrace(source: source, line: lineNumber, field: name, message: "\"\(text)\" is not a number")
                }
                guard value >= minimum else { throw .badTrace(source: source, line: lineNumber, field: name, message: "must be at least \(minimum), found \(text)") }
                if integer && value != value.rounded() {
                    throw .badTrace(source: source, line: lineNumber, field: name, message: "must be a whole number, found \(text)")
                }
                return value
            }
            let arrival = try numeric("arrival_s", minimum: 0)
            let duration = try numeric("duration_s", minimum: 0)
            let namespace = cell("namespace"), name = cell("name")
            for (field, value) in [("namespace", namespace), ("name", name)] where !Self.isDNSLabel(value) {
                throw .badTrace(source: source, line: lineNumber, field: field, message: "\"\(value)\" is not a DNS label (lower-case letters, digits, '-', at most 63)")
            }
            guard seen.insert("\(namespace)/\(name)").inserted else {
                throw .badTrace(source: source, line: lineNumber, field: "name", message: "pod \(namespace)/\(name) appears twice")
            }
            guard let kind = TracePod.Kind(rawValue: cell("kind")) else {
                throw .badTrace(source: source, line: lineNumber, field: "kind", message: "\"\(cell("kind"))\" is not one of notebook, job, service")
            }
            let gpus = try numeric("gpus", minimum: 0, integer: true)
            guard gpus <= 64 else { throw .badTrace(source: source, line: lineNumber, field: "gpus", message: "at most 64, found \(cell("gpus"))") }
            let gpuType = cell("gpu_type").lowercased()
            guard gpuType.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw .badTrace(source: source, line: lineNumber, field: "gpu_type", message: "\"\(cell("gpu_type"))\" is not a GPU name such as t4, a10g or l4")
            }
            if gpus == 0 && !gpuType.isEmpty {
                throw .badTrace(source: source, line: lineNumber, field: "gpu_type", message: "set on a pod with 0 gpus")
            }
            let cpu = try numeric("cpu", minimum: 0)
            let memory = try numeric("memory_gib", minimum: 0)
            var toleratesAll = false
            if position["tolerate_all"] != nil {
                switch cell("tolerate_all").lowercased() {
                case "", "false", "0", "no": toleratesAll = false
                case "true", "1", "yes": toleratesAll = true
                default: throw .badTrace(source: source, line: lineNumber, field: "tolerate_all", message: "\"\(cell("tolerate_all"))\" is not true or false")
                }
            }
            pods.append(TracePod(
                arrival: arrival, duration: duration, namespace: namespace, name: name, kind: kind, gpus: Int(gpus), gpuType: gpuType,
                cpu: cpu, memoryGiB: memory, toleratesAll: toleratesAll))
        }
        return Trace(pods: pods)
    }

    /// The CSV `parse` reads, with the `tolerate_all` column.
    public func csv() -> String {
        var text = (Self.columns + Self.optionalColumns).joined(separator: ",") + "\n"
        for pod in pods {
            let fields = [
                Self.format(pod.arrival), Self.format(pod.duration), pod.namespace, pod.name, pod.kind.rawValue, String(pod.gpus), pod.gpuType,
                Self.format(pod.cpu), Self.format(pod.memoryGiB), pod.toleratesAll ? "true" : "",
            ]
            text += fields.joined(separator: ",") + "\n"
        }
        return text
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return String((value * 1000).rounded() / 1000)
    }

    static func isDNSLabel(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 63, text.first != "-", text.last != "-" else { return false }
        return text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }
}
