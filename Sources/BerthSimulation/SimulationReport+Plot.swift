import BerthModel
import BerthScheduling
import Foundation

extension SimulationReport {
    /// Stacked small multiples, one panel per policy on a shared time axis: GPUs on nodes (filled)
    /// against GPUs requested by pods (line), each pixel column showing the maximum of its span.
    public func svg(width: Int = 960, panelHeight: Int = 150) -> String {
        let left = 72.0, right = 16.0, top = 40.0, gap = 34.0
        let plotWidth = Double(width) - left - right
        let columns = max(1, Int(plotWidth))
        let end = max(horizon, policies.map(\.simulatedSeconds).max() ?? 0, 1)
        let peak = max(1, policies.flatMap { $0.series.map { max($0.gpus, $0.demand) } }.max() ?? 1)
        let panelsBottom = top + Double(policies.count) * (Double(panelHeight) + gap) + 10
        let tradeoff = tradeoffPanel(top: panelsBottom, left: left, plotWidth: plotWidth)
        let height = Int(panelsBottom + tradeoff.height)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="20" font-size="15" font-weight="bold">GPUs on nodes (blue area) and GPUs requested by pods (orange line), per policy</text>

            """
        for (number, result) in policies.enumerated() {
            let y0 = top + Double(number) * (Double(panelHeight) + gap) + 14
            let h = Double(panelHeight)
            func y(_ value: Int64) -> Double { y0 + h - h * Double(value) / Double(peak) }
            // Maximum of each step function over each column.
            var supply = Array(repeating: Int64(0), count: columns), demand = supply
            var index = 0
            var current = (gpus: Int64(0), demand: Int64(0))
            for column in 0..<columns {
                let from = end * Double(column) / Double(columns), to = end * Double(column + 1) / Double(columns)
                var high = current
                while index < result.series.count && result.series[index].time < to {
                    let point = result.series[index]
                    current = (point.gpus, point.demand)
                    if point.time >= from || index == 0 { high = (max(high.gpus, current.gpus), max(high.demand, current.demand)) }
                    index += 1
                }
                high = (max(high.gpus, current.gpus), max(high.demand, current.demand))
                supply[column] = high.gpus
                demand[column] = high.demand
            }
            let stats = "\(result.policy.rawValue): $\(Self.fixed(result.costUSD, 0)), \(Self.fixed(result.costRatio, 2))x the lower bound, \(result.nodesLaunched) nodes launched"
            svg += "<text x=\"\(left)\" y=\"\(Self.fixed(y0 - 4, 1))\" font-weight=\"bold\">\(stats)</text>\n"
            svg += "<rect x=\"\(left)\" y=\"\(Self.fixed(y0, 1))\" width=\"\(Self.fixed(plotWidth, 1))\" height=\"\(Self.fixed(h, 1))\" fill=\"#f7f7f7\" stroke=\"#ccc\"/>\n"
            var area = "M\(Self.fixed(left, 1)),\(Self.fixed(y0 + h, 1))"
            var line = ""
            for column in 0..<columns {
                let x0 = left + Double(column), x1 = x0 + 1
                area += " L\(Self.fixed(x0, 1)),\(Self.fixed(y(supply[column]), 1)) L\(Self.fixed(x1, 1)),\(Self.fixed(y(supply[column]), 1))"
                line += (column == 0 ? "M" : " L") + "\(Self.fixed(x0, 1)),\(Self.fixed(y(demand[column]), 1)) L\(Self.fixed(x1, 1)),\(Self.fixed(y(demand[column]), 1))"
            }
            area += " L\(Self.fixed(left + plotWidth, 1)),\(Self.fixed(y0 + h, 1)) Z"
            svg += "<path d=\"\(area)\" fill=\"#4c78a8\" fill-opacity=\"0.55\" stroke=\"#4c78a8\" stroke-width=\"0.8\"/>\n"
            svg += "<path d=\"\(line)\" fill=\"none\" stroke=\"#f58518\" stroke-width=\"1.2\"/>\n"
            // y axis: 0 and the peak; x axis: days.
            svg += "<text x=\"\(Self.fixed(left - 6, 1))\" y=\"\(Self.fixed(y0 + h, 1))\" text-anchor=\"end\">0</text>\n"
            svg += "<text x=\"\(Self.fixed(left - 6, 1))\" y=\"\(Self.fixed(y0 + 10, 1))\" text-anchor=\"end\">\(peak) GPUs</text>\n"
            let days = Int((end / 86_400).rounded(.up))
            let step = max(1, days / 15)
            for day in stride(from: 0, through: days, by: step) where Double(day) * 86_400 <= end {
                let x = left + plotWidth * Double(day) * 86_400 / end
                svg += "<line x1=\"\(Self.fixed(x, 1))\" y1=\"\(Self.fixed(y0 + h, 1))\" x2=\"\(Self.fixed(x, 1))\" y2=\"\(Self.fixed(y0 + h + 4, 1))\" stroke=\"#666\"/>"
                svg += "<text x=\"\(Self.fixed(x, 1))\" y=\"\(Self.fixed(y0 + h + 16, 1))\" text-anchor=\"middle\" fill=\"#444\">d\(day)</text>\n"
            }
        }
        return svg + tradeoff.svg + "</svg>\n"
    }
}

// MARK: Cost against wait

extension SimulationReport {
    /// A point is drawn at the top edge, with an arrow and its value, when its cost is more than
    /// this many times the cheapest point's. The static pool (about 15x the lower bound) would
    /// otherwise squash every other policy (1-2x) into the bottom tenth of the panel; a log axis
    /// would too (1.05x to 1.3x is a tenth of log 1x-16x), and the differences that matter, a few
    /// percent of cost for minutes of wait, are among those.
    static let tradeoffClipFactor = 3.0

    /// The scatter panel under the per-policy panels, starting at `top`: per policy with GPU
    /// notebooks, their p95 time to running (x, linear from 0s) against cost as a multiple of the
    /// lower bound (y, linear), Berth's warm points joined in target order with a dashed line at
    /// each target. Each point is a `<g class="tradeoff-point" data-policy=...>` translated to its
    /// position (a capped one's class adds `clipped`). Returns the markup and the height it takes.
    func tradeoffPanel(top: Double, left: Double, plotWidth: Double) -> (svg: String, height: Double) {
        let title = "Cost against the notebooks' p95 wait"
        let shown = policies.filter {
            $0.notebookTimeToRunning.count > 0 && $0.lowerBoundUSD > 0 && $0.costRatio.isFinite && $0.notebookTimeToRunning.p95.isFinite
        }
        let titleY = top + 20
        var svg = "<g id=\"tradeoff\">\n"
        svg += "<text x=\"\(Self.fixed(left, 1))\" y=\"\(Self.fixed(titleY, 1))\" font-size=\"15\" font-weight=\"bold\">\(title)"
        guard !shown.isEmpty else {
            svg += ": no GPU notebook ran, nothing to plot</text>\n</g>\n"
            return (svg, 32)
        }
        svg += ", per policy</text>\n"
        let plotTop = titleY + 24, plotHeight = 300.0
        let plotBottom = plotTop + plotHeight, right = left + plotWidth

        // y: cost / lower bound, from 1.0x (or below, if a policy left pods unscheduled) up.
        let ratios = shown.map(\.costRatio)
        let cheapest = ratios.min() ?? 1
        let cap = max(cheapest, 1) * Self.tradeoffClipFactor
        let highest = ratios.filter { $0 <= cap }.max() ?? cheapest
        let low = min(1, cheapest)
        let yStep = Self.niceStep(max(highest - low, 0.1) / 5)
        let yFrom = (low / yStep + 1e-9).rounded(.down) * yStep
        var yTo = ((highest + yStep / 4) / yStep - 1e-9).rounded(.up) * yStep
        if yTo <= yFrom + 1e-9 { yTo = yFrom + yStep }
        func y(_ ratio: Double) -> Double { plotBottom - plotHeight * (min(ratio, yTo) - yFrom) / (yTo - yFrom) }

        // x: the p95 wait in seconds, from 0; far enough to show each warm target.
        let targets = shown.compactMap { $0.policy.warmTarget }.map(\.seconds)
        let longest = (shown.map(\.notebookTimeToRunning.p95) + targets).max() ?? 0
        // Every wait 0 s (a static pool alone): a minute-long axis.
        let xStep = longest > 0 ? Self.durationStep(longest / 6) : 10
        let xTo = longest > 0 ? ((longest * 1.05) / xStep - 1e-9).rounded(.up) * xStep : 60
        func x(_ seconds: Double) -> Double { left + plotWidth * max(0, seconds) / xTo }

        svg += "<rect x=\"\(Self.fixed(left, 1))\" y=\"\(Self.fixed(plotTop, 1))\" width=\"\(Self.fixed(plotWidth, 1))\" height=\"\(Self.fixed(plotHeight, 1))\" fill=\"#f7f7f7\" stroke=\"#ccc\"/>\n"
        let yPlaces = yStep >= 0.1 - 1e-12 ? 1 : 2
        var tick = yFrom
        while tick <= yTo + 1e-9 {
            let ty = y(tick)
            svg += "<line x1=\"\(Self.fixed(left, 1))\" y1=\"\(Self.fixed(ty, 1))\" x2=\"\(Self.fixed(right, 1))\" y2=\"\(Self.fixed(ty, 1))\" stroke=\"#e3e3e3\"/>"
            svg += "<text class=\"tradeoff-y-tick\" x=\"\(Self.fixed(left - 6, 1))\" y=\"\(Self.fixed(ty + 4, 1))\" text-anchor=\"end\" fill=\"#444\">\(Self.fixed(tick, yPlaces))x</text>\n"
            tick += yStep
        }
        tick = 0
        while tick <= xTo + 1e-9 {
            let tx = x(tick)
            svg += "<line x1=\"\(Self.fixed(tx, 1))\" y1=\"\(Self.fixed(plotTop, 1))\" x2=\"\(Self.fixed(tx, 1))\" y2=\"\(Self.fixed(plotBottom + 4, 1))\" stroke=\"#e3e3e3\"/>"
            svg += "<text class=\"tradeoff-x-tick\" x=\"\(Self.fixed(tx, 1))\" y=\"\(Self.fixed(plotBottom + 16, 1))\" text-anchor=\"middle\" fill=\"#444\">\(Self.tickDuration(tick))</text>\n"
            tick += xStep
        }
        svg += "<text x=\"\(Self.fixed(left + plotWidth / 2, 1))\" y=\"\(Self.fixed(plotBottom + 34, 1))\" text-anchor=\"middle\">GPU notebooks' p95 time to running (node boot and image pull included)</text>\n"
        svg += "<text x=\"\(Self.fixed(left - 52, 1))\" y=\"\(Self.fixed(plotTop + plotHeight / 2, 1))\" text-anchor=\"middle\" transform=\"rotate(-90 \(Self.fixed(left - 52, 1)) \(Self.fixed(plotTop + plotHeight / 2, 1)))\">cost / the lower bound</text>\n"

        // Each warm target as a dashed line: a warm point left of its own line met its goal.
        var labelled = -Double.infinity
        for target in Set(targets).sorted() {
            let tx = x(target)
            svg += "<line class=\"tradeoff-target\" x1=\"\(Self.fixed(tx, 1))\" y1=\"\(Self.fixed(plotTop, 1))\" x2=\"\(Self.fixed(tx, 1))\" y2=\"\(Self.fixed(plotBottom, 1))\" stroke=\"#54a24b\" stroke-opacity=\"0.6\" stroke-dasharray=\"4 3\"/>"
            if tx - labelled >= 56 {
                svg += "<text x=\"\(Self.fixed(tx, 1))\" y=\"\(Self.fixed(plotTop - 4, 1))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#54a24b\">target \(Self.tickDuration(target))</text>"
                labelled = tx
            }
            svg += "\n"
        }

        let positions = shown.map { (x: x($0.notebookTimeToRunning.p95), y: y($0.costRatio), clipped: $0.costRatio > yTo) }
        // Berth's warm points in target order: the trade-off curve.
        let warm = shown.indices.filter { shown[$0].policy.warmTarget != nil }.sorted { shown[$0].policy.warmTarget! < shown[$1].policy.warmTarget! }
        if warm.count > 1 {
            let path = warm.enumerated().map { ($0.offset == 0 ? "M" : "L") + "\(Self.fixed(positions[$0.element].x, 1)),\(Self.fixed(positions[$0.element].y, 1))" }
            svg += "<path id=\"tradeoff-warm-curve\" d=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"#54a24b\" stroke-width=\"1\"/>\n"
        }

        // Labels (two lines, about 6.5 px a character at 11 px) right of the point, else left,
        // moved up or down until they overlap no point and no label placed before.
        var placed = positions.map { (x0: $0.x - 6, y0: $0.y - 6, x1: $0.x + 6, y1: $0.y + ($0.clipped ? 18 : 6)) }
        for (index, result) in shown.enumerated() {
            let position = positions[index]
            let name = result.policy.rawValue
            let values = "\(Self.fixed(result.costRatio, 2))x, p95 \(Self.duration(result.notebookTimeToRunning.p95))"
            let boxWidth = 6.5 * Double(max(name.count, values.count)) + 4, boxHeight = 28.0
            var choice: (dx: Double, dy: Double, end: Bool)?
            search: for dy in [0.0, 30, -30, 60, -60, 90, -90] {
                for end in [false, true] {
                    let x0 = end ? position.x - 8 - boxWidth : position.x + 8
                    let y0 = position.y + (position.clipped ? 16 : -10) + dy
                    let box = (x0: x0, y0: y0, x1: x0 + boxWidth, y1: y0 + boxHeight)
                    guard box.x0 >= left, box.x1 <= right, box.y0 >= plotTop, box.y1 <= plotBottom else { continue }
                    if placed.allSatisfy({ box.x1 <= $0.x0 || box.x0 >= $0.x1 || box.y1 <= $0.y0 || box.y0 >= $0.y1 }) {
                        choice = (end ? -8 : 8, box.y0 - position.y, end)
                        placed.append(box)
                        break search
                    }
                }
            }
            let fits = position.x + 8 + boxWidth <= right
            let label: (dx: Double, dy: Double, end: Bool) = choice ?? (fits ? 8 : -8, -10, !fits)
            let color = switch result.policy.kind {
            case .berth: result.policy.warmTarget == nil ? "#4c78a8" : "#54a24b"
            case .clusterAutoscaler: "#f58518"
            case .static: "#777777"
            }
            svg += "<g class=\"tradeoff-point\(position.clipped ? " clipped" : "")\" data-policy=\"\(Self.escaped(name))\" transform=\"translate(\(Self.fixed(position.x, 1)),\(Self.fixed(position.y, 1)))\">"
            if position.clipped {
                // An arrow pointing up out of the panel: the value is above the axis.
                svg += "<path d=\"M-6,10 L0,0 L6,10 Z\" fill=\"\(color)\"/><line x1=\"0\" y1=\"10\" x2=\"0\" y2=\"18\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            } else {
                svg += "<circle r=\"5\" fill=\"\(color)\" stroke=\"white\"/>"
            }
            if abs(label.dy - (position.clipped ? 16 : -10)) > 1 {
                // Moved away from its point: a leader line to it.
                svg += "<line x1=\"0\" y1=\"0\" x2=\"\(Self.fixed(label.dx, 1))\" y2=\"\(Self.fixed(label.dy + boxHeight / 2, 1))\" stroke=\"#999\" stroke-width=\"0.7\"/>"
            }
            let anchor = label.end ? " text-anchor=\"end\"" : ""
            svg += "<text x=\"\(Self.fixed(label.dx, 1))\" y=\"\(Self.fixed(label.dy + 11, 1))\" font-size=\"11\"\(anchor)>"
            svg += "<tspan class=\"tradeoff-name\" font-weight=\"bold\">\(Self.escaped(name))</tspan>"
            svg += "<tspan class=\"tradeoff-values\" x=\"\(Self.fixed(label.dx, 1))\" dy=\"13\">\(Self.escaped(values))</tspan></text></g>\n"
        }
        var height = plotBottom + 44 - top
        let hidden = policies.filter { result in !shown.contains { $0.policy == result.policy } }.map(\.policy.rawValue)
        if !hidden.isEmpty {
            svg += "<text x=\"\(Self.fixed(left, 1))\" y=\"\(Self.fixed(plotBottom + 52, 1))\" fill=\"#444\">Not shown (no GPU notebook ran): \(Self.escaped(hidden.joined(separator: ", ")))</text>\n"
            height += 16
        }
        return (svg + "</g>\n", height)
    }

    /// 1, 2 or 5 times a power of ten, the smallest at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let base = pow(10, (log10(raw)).rounded(.down))
        return [1.0, 2, 5, 10].map { $0 * base }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * base
    }

    /// A step between duration ticks (seconds) that reads well, at least `raw`.
    static func durationStep(_ raw: Double) -> Double {
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400]
        return steps.first { $0 >= raw } ?? niceStep(raw / 86_400) * 86_400
    }

    /// A tick's label: `0s`, `45s`, `1m`, `1m30s`, `2h`, `1h30m`.
    /// A whole number of seconds as Go writes durations (`0s`, `1m30s`, `2h`), as the config does.
    static func tickDuration(_ seconds: Double) -> String {
        GoDuration.format(.seconds(Int64(seconds.rounded())))
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
