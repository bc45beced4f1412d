import BerthSimulation
import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The plot's cost-against-wait panel, read back as XML: one point per policy with GPU notebooks,
/// placed by its values, the static pool's far-off cost capped at the top edge and marked.
@Suite struct TradeoffPlotTests {
    /// A result to reshape: the shape of a real one, its figures set by each test.
    static func template() async throws -> PolicyResult {
        let notebook = TracePod(arrival: 0, duration: 600, namespace: "jhub", name: "jupyter-a", kind: .notebook, gpus: 1, gpuType: "", cpu: 2, memoryGiB: 8)
        let report = try await Simulator.run(trace: Trace(pods: [notebook]), policies: [.static])
        return try #require(report.policies.first)
    }

    static func report(_ points: [(String, ratio: Double, p95: Double, notebooks: Int)]) async throws -> SimulationReport {
        let template = try await template()
        var report = try await Simulator.run(trace: Trace(pods: []), policies: [])
        report.policies = try points.map { name, ratio, p95, notebooks in
            var result = template
            result.policy = try #require(PolicyName(rawValue: name))
            result.lowerBoundUSD = 100
            result.costUSD = ratio * 100
            result.notebookTimeToRunning = Percentiles(p50: p95 / 2, p95: p95, max: p95, count: notebooks)
            return result
        }
        return report
    }

    /// The bench's shape: Berth cheapest and slow, the static pool instant at 15x, warm in between.
    static let bench: [(String, ratio: Double, p95: Double, notebooks: Int)] = [
        ("berth", 1.06, 265, 40), ("cluster-autoscaler", 1.92, 259, 40), ("static", 15.2, 0, 40),
        ("berth-warm-10s", 1.40, 8, 40), ("berth-warm-30s", 1.20, 27, 40), ("berth-warm-1m", 1.10, 55, 40),
    ]

    struct Point {
        var policy: String
        var x: Double
        var y: Double
        var clipped: Bool
        var name: String
        var values: String
        var marker: String
    }

    /// The SVG parsed as XML (failing the test when it is not well-formed), then the panel's parts.
    struct Panel {
        var elements: [XMLElement]
        var panel: XMLElement?

        init(_ svg: String) throws {
            let document = try XMLDocument(xmlString: svg, options: [])
            func walk(_ element: XMLElement) -> [XMLElement] {
                [element] + (element.children ?? []).compactMap { $0 as? XMLElement }.flatMap(walk)
            }
            elements = try walk(#require(document.rootElement()))
            panel = elements.first { $0.value("id") == "tradeoff" }
        }

        func classed(_ name: String) -> [XMLElement] {
            elements.filter { ($0.value("class") ?? "").split(separator: " ").contains(Substring(name)) }
        }

        func points() throws -> [Point] {
            try classed("tradeoff-point").map { group in
                let transform = try #require(group.value("transform"))
                let numbers = transform.dropFirst("translate(".count).dropLast().split(separator: ",").compactMap { Double($0) }
                try #require(numbers.count == 2, "\(transform)")
                let children = (group.children ?? []).compactMap { $0 as? XMLElement }
                let spans = children.filter { $0.name == "text" }.flatMap { ($0.children ?? []).compactMap { $0 as? XMLElement } }
                return Point(
                    policy: group.value("data-policy") ?? "", x: numbers[0], y: numbers[1],
                    clipped: (group.value("class") ?? "").contains("clipped"),
                    name: spans.first { $0.value("class") == "tradeoff-name" }?.stringValue ?? "",
                    values: spans.first { $0.value("class") == "tradeoff-values" }?.stringValue ?? "",
                    marker: children.first?.name ?? "")
            }
        }

        /// The plot area's rectangle: x, y, width, height.
        func area() throws -> (x: Double, y: Double, width: Double, height: Double) {
            let rect = try #require((panel?.children ?? []).compactMap { $0 as? XMLElement }.first { $0.name == "rect" })
            func number(_ name: String) throws -> Double { try #require(Double(rect.value(name) ?? "")) }
            return try (number("x"), number("y"), number("width"), number("height"))
        }

        func ticks(_ axis: String) -> [String] { classed("tradeoff-\(axis)-tick").map { $0.stringValue ?? "" } }
    }

    @Test func eachPolicyIsALabelledPoint() async throws {
        let svg = try await Self.report(Self.bench).svg()
        let panel = try Panel(svg)
        #expect(panel.panel != nil)
        #expect(svg.contains("Cost against the notebooks' p95 wait"))
        let points = try panel.points()
        #expect(points.map(\.policy) == Self.bench.map(\.0))
        #expect(points.map(\.name) == Self.bench.map(\.0))
        #expect(points.map(\.values) == [
            "1.06x, p95 4m25s", "1.92x, p95 4m19s", "15.20x, p95 0s", "1.40x, p95 8s", "1.20x, p95 27s", "1.10x, p95 55s",
        ])
        // The per-policy panels are still there, one each.
        #expect(svg.components(separatedBy: "x the lower bound, ").count - 1 == Self.bench.count)
    }

    @Test func positionsFollowTheValues() async throws {
        let panel = try Panel(try await Self.report(Self.bench).svg())
        let area = try panel.area()
        let points = try panel.points().filter { !$0.clipped }
        let values = Dictionary(uniqueKeysWithValues: Self.bench.map { ($0.0, $0) })
        #expect(points.count == 5)
        // Longer waits further right, in proportion (linear from 0s at the left edge).
        let byWait = points.sorted { values[$0.policy]!.p95 < values[$1.policy]!.p95 }
        #expect(zip(byWait, byWait.dropFirst()).allSatisfy { $0.x < $1.x })
        let scale = (byWait.last!.x - area.x) / values[byWait.last!.policy]!.p95
        for point in points {
            #expect(abs(point.x - area.x - scale * values[point.policy]!.p95) < 0.2, "\(point.policy)")
        }
        // Dearer higher up (smaller y), in proportion too.
        let byCost = points.sorted { values[$0.policy]!.ratio < values[$1.policy]!.ratio }
        #expect(zip(byCost, byCost.dropFirst()).allSatisfy { $0.y > $1.y })
        let (low, high) = (byCost.first!, byCost.last!)
        let perRatio = (low.y - high.y) / (values[high.policy]!.ratio - values[low.policy]!.ratio)
        for point in points {
            #expect(abs(low.y - point.y - perRatio * (values[point.policy]!.ratio - values[low.policy]!.ratio)) < 0.2, "\(point.policy)")
        }
        // Every point inside the plot area; ticks as durations and multiples.
        for point in try panel.points() {
            #expect(point.x >= area.x && point.x <= area.x + area.width && point.y >= area.y && point.y <= area.y + area.height, "\(point.policy)")
        }
        #expect(panel.ticks("x") == ["0s", "1m", "2m", "3m", "4m", "5m"])
        #expect(panel.ticks("y") == ["1.0x", "1.2x", "1.4x", "1.6x", "1.8x", "2.0x"])
        let tickYs = panel.classed("tradeoff-y-tick").compactMap { Double($0.value("y") ?? "") }
        let bottomTick = try #require(tickYs.first)
        #expect(abs(bottomTick - 4 - (area.y + area.height)) < 0.01, "1.0x at the bottom edge")
    }

    @Test func aCostFarAboveTheOthersIsCappedAtTheTopAndMarked() async throws {
        let panel = try Panel(try await Self.report(Self.bench).svg())
        let area = try panel.area()
        let points = try panel.points()
        let clipped = points.filter(\.clipped)
        #expect(clipped.map(\.policy) == ["static"])
        let pool = try #require(clipped.first)
        #expect(abs(pool.y - area.y) < 0.01)
        #expect(abs(pool.x - area.x) < 0.01)
        #expect(pool.marker == "path", "an arrow, not a dot")
        #expect(pool.values == "15.20x, p95 0s")
        #expect(points.filter { !$0.clipped }.allSatisfy { $0.marker == "circle" && $0.y > area.y })
        // Policies all dear but close together: nothing capped, the axis spans them.
        let dear = try Panel(try await Self.report([("berth", 5, 100, 3), ("cluster-autoscaler", 8, 90, 3), ("static", 14, 0, 3)]).svg())
        #expect(try dear.points().allSatisfy { !$0.clipped })
        #expect(dear.ticks("y").first == "0.0x")
        #expect(dear.ticks("y").last == "20.0x")
    }

    @Test func berthsWarmPointsAreJoinedInTargetOrder() async throws {
        // Listed out of order: the curve still runs 10s, 30s, 1m.
        let shuffled = [Self.bench[5], Self.bench[0], Self.bench[3], Self.bench[2], Self.bench[4], Self.bench[1]]
        let panel = try Panel(try await Self.report(shuffled).svg())
        let points = try panel.points()
        let curve = try #require(panel.elements.first { $0.value("id") == "tradeoff-warm-curve" })
        let path = try #require(curve.value("d"))
        let expected = try ["berth-warm-10s", "berth-warm-30s", "berth-warm-1m"].map { name in
            let point = try #require(points.first { $0.policy == name })
            return String(format: "%.1f,%.1f", point.x, point.y)
        }
        #expect(path == "M" + expected.joined(separator: " L"))
        // A dashed line at each target: 10 s, 30 s, 60 s from the left edge, on the same scale.
        let area = try panel.area()
        let slow = try #require(points.first { $0.policy == "berth" })
        let scale = (slow.x - area.x) / 265
        let targets = panel.classed("tradeoff-target").compactMap { Double($0.value("x1") ?? "") }
        #expect(targets.count == 3)
        for (x, seconds) in zip(targets, [10.0, 30, 60]) {
            #expect(abs(x - area.x - scale * seconds) < 0.2)
        }
    }

    @Test func edgeCasesStillDrawWellFormedSVG() async throws {
        // No GPU notebook in the trace: a note, no panel to read.
        let none = try await Self.report([("berth", 1.1, 0, 0), ("static", 3, 0, 0)]).svg()
        let empty = try Panel(none)
        #expect(try empty.points().isEmpty)
        #expect(none.contains("no GPU notebook ran, nothing to plot"))
        #expect(empty.panel.flatMap { $0.children?.compactMap { $0 as? XMLElement }.first { $0.name == "rect" } } == nil)

        // One policy: one point, no curve, the axis from 1.0x past it.
        let single = try Panel(try await Self.report([("berth-warm-30s", 1.3, 20, 5)]).svg())
        let only = try single.points()
        #expect(only.map(\.values) == ["1.30x, p95 20s"])
        #expect(only.allSatisfy { !$0.clipped })
        #expect(!single.elements.contains { $0.value("id") == "tradeoff-warm-curve" })
        #expect(single.ticks("y").first == "1.0x")

        // Every p95 0 s: a minute-long axis, every point on its left edge, no NaN anywhere.
        let instant = try await Self.report([("berth", 1.0, 0, 2), ("static", 1.0, 0, 2)]).svg()
        let flat = try Panel(instant)
        let area = try flat.area()
        #expect(flat.ticks("x").first == "0s")
        #expect(flat.ticks("x").last == "1m")
        #expect(try flat.points().allSatisfy { abs($0.x - area.x) < 0.01 && $0.y < area.y + area.height + 0.01 && $0.y > area.y })
        #expect(!instant.lowercased().contains("nan") && !instant.contains("inf"))

        // A policy none of whose notebooks ran is named under the panel, not drawn at 0s.
        let partial = try await Self.report([("berth", 1.1, 120, 4), ("cluster-autoscaler", 1.5, 0, 0)]).svg()
        #expect(try Panel(partial).points().map(\.policy) == ["berth"])
        #expect(partial.contains("Not shown (no GPU notebook ran): cluster-autoscaler"))
    }
}

extension XMLElement {
    /// An attribute's value by name (`attribute(forName:)` finds nothing in swift-corelibs-foundation
    /// when the document has a default namespace, as SVG does).
    fileprivate func value(_ name: String) -> String? { attributes?.first { $0.name == name }?.stringValue }
}
