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
        let height = Int(top + Double(policies.count) * (Double(panelHeight) + gap) + 10)
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
        return svg + "</svg>\n"
    }
}
