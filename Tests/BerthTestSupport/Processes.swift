import Foundation
import Synchronization

/// Shared by the test targets: running real programs (curl, openssl, python3, kubectl, the berth
/// binary), waiting for conditions, throwaway certificates. Not part of any product.

public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `executable` (looked up in PATH, or a path) with `arguments`, feeding `input`; kills it
/// after `timeout`. Both pipes are drained concurrently so a chatty child never blocks.
public func run(_ executable: String, _ arguments: [String], input: Data? = nil, timeout: Duration = .seconds(60)) throws -> CommandResult {
    let process = Process()
    if executable.contains("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try? stdin.fileHandleForWriting.close()
    let outBox = Mutex<Data>(Data())
    let errBox = Mutex<Data>(Data())
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) {
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        outBox.withLock { $0 = data }
    }
    DispatchQueue.global().async(group: group) {
        let data = stderr.fileHandleForReading.readDataToEndOfFile()
        errBox.withLock { $0 = data }
    }
    if group.wait(timeout: .now() + timeout.seconds) == .timedOut {
        process.terminate()
        _ = group.wait(timeout: .now() + 5)
    }
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: outBox.withLock { $0 }, as: UTF8.self),
        stderr: String(decoding: errBox.withLock { $0 }, as: UTF8.self))
}

public func run(_ executable: String, _ arguments: [String], input: String, timeout: Duration = .seconds(60)) throws -> CommandResult {
    try run(executable, arguments, input: Data(input.utf8), timeout: timeout)
}

/// Runs a Python 3 script (ssl, http.client, socket: real clients).
public func python(_ script: String, arguments: [String] = [], timeout: Duration = .seconds(60)) throws -> CommandResult {
    try run("python3", ["-c", script] + arguments, timeout: timeout)
}

/// Polls `condition` until it holds or `timeout` passes: for conditions with no event to await.
public func waitUntil(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

extension Duration {
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// The repository root and its test fixtures.
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    /// kubernetes/api's round-trip fixtures (Tests/Fixtures/kubernetes-api/README.md says where from).
    public static let kubernetesAPIFixtures = fixtures.appendingPathComponent("kubernetes-api")

    /// The `berth` binary built beside the test bundle (or `BERTH_BIN`).
    public static var berthBinary: String {
        if let path = ProcessInfo.processInfo.environment["BERTH_BIN"] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("berth")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate.path)
            {
                return candidate.path
            }
            directory = directory.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/berth").path
    }
}

/// A throwaway CA and certificates made with the openssl CLI (SAN localhost, 127.0.0.1).
public struct TestPKI: Sendable {
    public let directory: String
    public var caCertificate: String { directory + "/ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }

    /// A fresh CA and server certificate in a new temporary directory.
    public static func make(label: String = "berth") throws -> TestPKI {
        let directory = NSTemporaryDirectory() + "\(label)-pki-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pki = TestPKI(directory: directory)
        try pki.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", directory + "/ca.key", "-out", directory + "/ca.pem", "-days", "2", "-subj", "/CN=Berth Test CA",
        ])
        try pki.issue(name: "server", serial: "1001", commonName: "localhost")
        return pki
    }

    public func openssl(_ arguments: [String]) throws {
        let result = try run("openssl", arguments)
        if result.status != 0 { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// Issues `<name>.pem` / `<name>.key` signed by the CA.
    public func issue(name: String, serial: String, commonName: String, client: Bool = false, into target: String? = nil) throws {
        let out = target ?? directory
        let extensions = out + "/\(name).ext"
        let ext = client ? "extendedKeyUsage=clientAuth\n" : "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        try ext.write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", out + "/\(name).key", "-out", out + "/\(name).csr", "-subj", "/CN=\(commonName)",
        ])
        try openssl([
            "x509", "-req", "-in", out + "/\(name).csr", "-CA", caCertificate, "-CAkey", directory + "/ca.key",
            "-set_serial", serial, "-days", "2", "-extfile", extensions, "-out", out + "/\(name).pem",
        ])
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
