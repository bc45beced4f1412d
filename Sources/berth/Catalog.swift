import ArgumentParser
import BerthAWS
import BerthModel
import BerthScheduling
import Dispatch
import Foundation
import Synchronization

struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the instance catalog: built in (EC2 GPU types, us-east-1 on-demand prices) or read from EC2.",
        discussion: """
            -o json prints a list of {name, gpus, gpuName, gpuMemoryMiB, vcpu, memoryMiB, arch, pricePerHour}.
            --cloud aws reads the GPU types from EC2's DescribeInstanceTypes with the AWS credential chain
            (environment, web identity, Pod Identity, shared files with AWS_PROFILE, IMDSv2); prices come from
            the AWS Price List for the region (AWS_ENDPOINT_URL_PRICING overrides its endpoint; when it cannot be
            read, the built-in us-east-1 table, with a warning on stderr), --prices FILE winning over both; a type
            none knows has "pricePerHour": null and a "note".
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    enum Cloud: String, ExpressibleByArgument, CaseIterable {
        case builtin, aws
    }

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: Output = .table

    @Option(help: "Where the catalog comes from: builtin or aws.")
    var cloud: Cloud = .builtin

    @Option(help: "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1).")
    var region: String?

    @Option(help: "EC2 endpoint URL (default: AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, else https://ec2.<region>.amazonaws.com).")
    var endpoint: String?

    @Option(help: ArgumentHelp("On-demand prices overriding the built-in table (--cloud aws): a file in -o json's shape.", valueName: "file"))
    var prices: String?

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instance types laid over the built-in catalog (another region's prices, more types): a file in -o json's shape.", valueName: "file"))
    var catalogFile: String?

    func validate() throws {
        if cloud == .aws && catalogFile != nil {
            throw ValidationError("--catalog applies to the built-in catalog; with --cloud aws use --prices")
        }
        if cloud == .builtin && (region != nil || endpoint != nil || prices != nil) {
            throw ValidationError("--region, --endpoint and --prices need --cloud aws")
        }
    }

    /// One row: the type and its on-demand price, nil when unknown.
    typealias Row = (type: InstanceType, price: Double?)

    func run() throws {
        try failing {
            let rows: [Row] = switch cloud {
            case .builtin: try CatalogFile.load(catalogFile).types.map { ($0, $0.pricePerHour) }
            case .aws: try awsRows()
            }
            switch output {
            case .json:
                let list: [JSON] = rows.map { row in
                    var object: JSONObject = [
                        "name": .string(row.type.name), "gpus": .number(row.type.gpuCount), "gpuName": .string(row.type.gpuName),
                        "gpuMemoryMiB": .number(row.type.gpuMemoryMiB), "vcpu": .number(row.type.vcpu),
                        "memoryMiB": .number(Int(row.type.memoryMiB)), "arch": .string(row.type.arch),
                        "pricePerHour": row.price.map { .number(String($0)) } ?? .null,
                    ]
                    if row.price == nil { object["note"] = .string("no known on-demand price: not in Berth's price table, never launched") }
                    return .object(object)
                }
                Terminal.write(JSONWriter.string(.array(list), pretty: true) + "\n")
            case .table:
                var table = [["NAME", "GPUS", "GPU", "GPU MEMORY", "VCPU", "MEMORY", "ARCH", "$/HOUR"]]
                for row in rows {
                    table.append([
                        row.type.name, String(row.type.gpuCount), row.type.gpuName, gib(row.type.gpuMemoryMiB), String(row.type.vcpu),
                        "\(row.type.memoryMiB / 1024) GiB", row.type.arch, row.price.map { String($0) } ?? "unknown",
                    ])
                }
                Terminal.write(TextTable.render(table))
            }
        }
    }

    /// The GPU types EC2 describes, priced from the built-in table.
    private func awsRows() throws -> [Row] {
        let chain = AWSCredentialChain(environment: ProcessInfo.processInfo.environment)
        var configuration: EC2CloudConfiguration
        do {
            let region = try region ?? chain.region() ?? "us-east-1"
            let override = try endpoint.map { text throws(AWSError) in try AWSEndpoint(url: text, what: "--endpoint") }
            configuration = EC2CloudConfiguration(
                region: region, endpoint: try override ?? chain.endpointOverride(service: "EC2"), launchTemplate: nil,
                priceSource: .priceList(endpoint: try chain.endpointOverride(service: "PRICING")))
        } catch {
            throw CLIError(message: "catalog --cloud aws: \(error)".replacingOccurrences(of: "\n", with: " "))
        }
        if let prices {
            let text = try ManifestFile.readText(prices)
            do {
                let table = try EC2CloudConfiguration.prices(catalog: try YAMLReader.document(text), source: prices)
                configuration.onDemandPrices.merge(table) { _, fromFile in fromFile }
            } catch let error as ConfigError {
                throw CLIError(message: "prices \(error)")
            } catch {
                throw CLIError(message: "prices \(prices): \(error)")
            }
        }
        let (_, catalog) = try EC2Setup.start(configuration, chain: chain, command: "catalog --cloud aws")
        if let warning = catalog.priceWarning { Terminal.error("warning: \(warning)") }
        return catalog.entries.map { ($0.type, $0.onDemandPricePerHour) }
    }

    /// `16 GiB`, `22.4 GiB` (EC2 reports L4 memory as 22,888 MiB).
    private func gib(_ mib: Int) -> String {
        mib % 1024 == 0 ? "\(mib / 1024) GiB" : String(format: "%.1f GiB", Double(mib) / 1024)
    }
}

/// Runs async work to completion from the synchronous command (the CLI's commands are not async);
/// typed errors pass through.
func blocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) throws(E) -> T {
    let result = Mutex<Result<T, E>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        do throws(E) {
            let value = try await body()
            result.withLock { $0 = .success(value) }
        } catch {
            result.withLock { $0 = .failure(error) }
        }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0 }!.get()
}

/// `blocking` for untyped work, its error as one CLI line.
func blockingCLI<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    do {
        return try blocking(body)
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError(message: "\(error)")
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
