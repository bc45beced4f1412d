import ArgumentParser
import BerthModel
import Foundation
import Logging
import Synchronization

/// One JSON object per line on stdout: `{"time":...,"level":...,"logger":...,"msg":...,<metadata>}`.
/// Only the binary installs it (`LoggingSystem.bootstrap`); libraries just take a `Logger`.
struct JSONLogHandler: LogHandler {
    enum Format: String, CaseIterable, ExpressibleByArgument {
        /// One JSON object per line (for log pipelines).
        case json
        /// `05:07:37.696 info  launching g4dn.xlarge launchID=… pool=gpu` (for people).
        case text
    }

    let label: String
    var format: Format = .json
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, format: Format = .json) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let output = Mutex<Void>(())
    private static let formatter: @Sendable (Date) -> String = { date in
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.formatter(Date())), ("level", event.level.rawValue), ("logger", label), ("msg", event.message.description),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for key in merged.keys.sorted() { fields.append((key, Self.flatten(merged[key]!))) }
        if format == .text {
            let time = fields[0].1.split(separator: "T").last.map { String($0.prefix(12)) } ?? fields[0].1
            var line = time + " " + event.level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + event.message.description
            for (key, value) in fields.dropFirst(4) { line += " \(key)=\(value.contains(" ") ? Self.quote(value) : value)" }
            line += "\n"
            Self.output.withLock { _ in FileHandle.standardOutput.write(Data(line.utf8)) }
            return
        }
        var line = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { line += "," }
            line += Self.quote(key) + ":" + Self.quote(value)
        }
        line += "}\n"
        Self.output.withLock { _ in FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case let .string(text): text
        case let .stringConvertible(value): value.description
        case let .array(values): "[" + values.map(flatten).joined(separator: ",") + "]"
        case let .dictionary(map): "{" + map.keys.sorted().map { "\($0)=\(flatten(map[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (escapes quotes, backslashes and control characters).
    static func quote(_ text: String) -> String { JSONWriter.string(.string(text)) }
}
