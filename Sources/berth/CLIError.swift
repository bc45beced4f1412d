import ArgumentParser
import Foundation

/// A failure the user caused or can fix: printed as one line on stderr, exit code 1, no trace.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

enum Terminal {
    static func error(_ line: String) {
        var line = "berth: " + line
        if !line.hasSuffix("\n") { line += "\n" }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

extension ParsableCommand {
    /// Runs `body`, turning a `CLIError` into one stderr line and exit code 1.
    func failing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as CLIError {
            Terminal.error(error.message)
            throw ExitCode(1)
        }
    }
}
