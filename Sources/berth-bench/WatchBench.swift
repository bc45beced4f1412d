import BerthKube
import BerthModel
import Foundation

/// `berth-bench watch`: how many watch event lines per second the client decodes into events and
/// typed views (Pod, Node), on lines built from the upstream API fixtures (every field populated,
/// so heavier than typical objects) and from the z2jh notebook pod (a realistic one).
/// A 5,000-node cluster's churn is on the order of hundreds to a few thousand events/s.
func benchWatch(root: URL) throws {
    let fixtures = ProcessInfo.processInfo.environment["BERTH_FIXTURES"].map { URL(fileURLWithPath: $0) }
        ?? root.appendingPathComponent("Tests/Fixtures/kubernetes-api")
    let fixturePod = try JSONParser.parse(Array(try Data(contentsOf: fixtures.appendingPathComponent("core.v1.Pod.json"))))
    let fixtureNode = try JSONParser.parse(Array(try Data(contentsOf: fixtures.appendingPathComponent("core.v1.Node.json"))))
    let review = try JSONParser.parse(Array(try Data(contentsOf: root.appendingPathComponent("Tests/Fixtures/admission/z2jh-gpu-notebook.review.json"))))
    guard let notebookPod = review["request"]?["object"] else { throw CLIFailure("the review fixture has no request.object") }

    func lines(_ object: JSON, count: Int) -> [[UInt8]] {
        (0..<count).map { index in
            var copy = object
            if case .object(var top) = copy {
                var meta = top["metadata"]?.objectValue ?? JSONObject()
                meta["name"] = .string("object-\(index)")
                meta["resourceVersion"] = .string(String(100_000 + index))
                top["metadata"] = .object(meta)
                copy = .object(top)
            }
            var line = JSONWriter.bytes(["type": .string(index % 3 == 0 ? "ADDED" : "MODIFIED"), "object": copy])
            line.append(10)
            return line
        }
    }

    func run(_ label: String, _ lines: [[UInt8]], view: ([UInt8]) throws -> Int) throws {
        let bytes = lines.reduce(0) { $0 + $1.count }
        var sink = 0
        for line in lines.prefix(200) { sink &+= try view(line) }  // warm up
        let clock = ContinuousClock()
        var rates: [Double] = []
        for _ in 0..<7 {
            let elapsed = try clock.measure { for line in lines { sink &+= try view(line) } }
            let seconds = elapsed.seconds
            rates.append(Double(lines.count) / seconds)
        }
        let rate = median(rates)
        let padded = label.count >= 44 ? label : label + String(repeating: " ", count: 44 - label.count)
        print(padded + String(format: " %9.0f events/s  %7.1f MB/s  (%d B/event)", rate,
                     rate * Double(bytes) / Double(lines.count) / 1e6, bytes / lines.count))
        if sink == 42 { print("") }
    }

    print("bench-kube: watch event lines decoded (WatchEvent + typed view), median of 7 runs")
    let podLines = lines(fixturePod, count: 2000)
    let nodeLines = lines(fixtureNode, count: 2000)
    let notebookLines = lines(notebookPod, count: 2000)
    try run("Pod events (upstream fixture, all fields)", podLines) { line in
        let event = try WatchEvent.decode(line)
        return try Pod(json: event.object).requests.count &+ event.resourceVersion.utf8.count
    }
    try run("Node events (upstream fixture, all fields)", nodeLines) { line in
        let event = try WatchEvent.decode(line)
        return try Node(json: event.object).allocatable.count &+ event.resourceVersion.utf8.count
    }
    try run("Pod events (z2jh GPU notebook)", notebookLines) { line in
        let event = try WatchEvent.decode(line)
        return try Pod(json: event.object).requests.count
    }
    try run("reference: JSON parse only (fixture Pod)", podLines) { line in
        (try JSONParser.parse(line)).objectValue?.count ?? 0
    }
}
