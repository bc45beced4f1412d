import ArgumentParser
import BerthModel
import BerthScheduling
import Foundation

struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the built-in instance catalog: EC2 GPU types, us-east-1 on-demand prices.",
        discussion: "-o json prints a list of {name, gpus, gpuName, gpuMemoryMiB, vcpu, memoryMiB, arch, pricePerHour}."
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: Output = .table

    func run() throws {
        let types = InstanceCatalog.builtIn().types
        switch output {
        case .json:
            let list: [JSON] = types.map { type in
                [
                    "name": .string(type.name), "gpus": .number(type.gpuCount), "gpuName": .string(type.gpuName),
                    "gpuMemoryMiB": .number(type.gpuMemoryMiB), "vcpu": .number(type.vcpu), "memoryMiB": .number(Int(type.memoryMiB)),
                    "arch": .string(type.arch), "pricePerHour": .number(String(type.pricePerHour)),
                ]
            }
            Terminal.write(JSONWriter.string(.array(list), pretty: true) + "\n")
        case .table:
            var rows = [["NAME", "GPUS", "GPU", "GPU MEMORY", "VCPU", "MEMORY", "ARCH", "$/HOUR"]]
            for type in types {
                rows.append([
                    type.name, String(type.gpuCount), type.gpuName, gib(type.gpuMemoryMiB), String(type.vcpu),
                    "\(type.memoryMiB / 1024) GiB", type.arch, String(type.pricePerHour),
                ])
            }
            Terminal.write(TextTable.render(rows))
        }
    }

    /// `16 GiB`, `22.4 GiB` (EC2 reports L4 memory as 22,888 MiB).
    private func gib(_ mib: Int) -> String {
        mib % 1024 == 0 ? "\(mib / 1024) GiB" : String(format: "%.1f GiB", Double(mib) / 1024)
    }
}

/// Left-aligned columns separated by two spaces, like kubectl's tables.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index == widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        var text = ""
        for row in rows {
            var line = ""
            for (index, cell) in row.enumerated() {
                line += cell
                if index < row.count - 1 { line += String(repeating: " ", count: widths[index] - cell.count + 2) }
            }
            text += line + "\n"
        }
        return text
    }
}
