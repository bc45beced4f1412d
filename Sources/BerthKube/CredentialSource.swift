import BerthModel
import Dispatch
import Foundation
import Synchronization

/// Produces the `Authorization` header for each request and caches what is expensive to get:
/// a token file is re-read at most once a minute (client-go's cachingTokenSource period); an exec
/// plugin's token is kept until its `expirationTimestamp` (or, without one, until the server
/// answers 401), like client-go's exec authenticator.
public final class CredentialSource: Sendable {
    private let credentials: KubeCredentials
    private let now: @Sendable () -> Date
    private struct Cache {
        var token: String?
        var expires: Date?
        var readAt: Date?
        var certificate: ExecCertificate?
    }
    private let cache = Mutex(Cache())
    /// Serialises plugin runs so concurrent requests run the plugin once.
    private let refreshLock = Mutex<Void>(())
    private let runs = Atomic<Int>(0)

    public static let tokenFileRereadInterval: TimeInterval = 60

    public init(_ credentials: KubeCredentials, now: @escaping @Sendable () -> Date = { Date() }) {
        self.credentials = credentials
        self.now = now
    }

    /// How many times the exec plugin ran or the token file was read.
    public var refreshCount: Int { runs.load(ordering: .relaxed) }

    /// Whether a 401 may be cured by getting the credential again.
    var canRefresh: Bool {
        switch credentials {
        case .tokenFile, .exec: true
        default: false
        }
    }

    /// Forgets the cached token (after a 401).
    public func invalidate() {
        cache.withLock { $0 = Cache() }
    }

    public func authorization() throws(KubeError) -> String? {
        switch credentials {
        case .none:
            return nil
        case .bearerToken(let token):
            return "Bearer \(token)"
        case .tokenFile(let path):
            let current = now()
            if let token = cache.withLock({ cache -> String? in
                guard let readAt = cache.readAt, current.timeIntervalSince(readAt) < Self.tokenFileRereadInterval else { return nil }
                return cache.token
            }) { return "Bearer \(token)" }
            let bytes = try KubeConfigLoader.readFile(path, what: "token")
            runs.wrappingAdd(1, ordering: .relaxed)
            let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw .configuration(source: path, message: "token file is empty") }
            cache.withLock { $0 = Cache(token: token, expires: nil, readAt: current) }
            return "Bearer \(token)"
        case .exec:
            return try execResult().token.map { "Bearer \($0)" }
        }
    }

    /// Both parts of the credential from one lookup (one plugin run at most): the authorization
    /// header and the client certificate an exec plugin handed out (nil for other credentials, or
    /// when the plugin gives a token only). The client rebuilds its TLS context when it changes.
    public func current() throws(KubeError) -> (authorization: String?, certificate: ExecCertificate?) {
        guard case .exec = credentials else { return (try authorization(), nil) }
        let result = try execResult()
        return (result.token.map { "Bearer \($0)" }, result.certificate)
    }

    /// The cached ExecCredential, or a fresh one when absent or expired.
    private func execResult() throws(KubeError) -> (token: String?, certificate: ExecCertificate?) {
        guard case .exec(let plugin) = credentials else { return (nil, nil) }
        return try refreshLock.withLock { _ throws(KubeError) -> (token: String?, certificate: ExecCertificate?) in
            let current = now()
            if let cached = cache.withLock({ cache -> (token: String?, certificate: ExecCertificate?)? in
                guard cache.token != nil || cache.certificate != nil else { return nil }
                if let expires = cache.expires, expires <= current { return nil }
                return (cache.token, cache.certificate)
            }) { return cached }
            let result = try Self.run(plugin)
            runs.wrappingAdd(1, ordering: .relaxed)
            cache.withLock { $0 = Cache(token: result.token, expires: result.expires, readAt: current, certificate: result.certificate) }
            return (result.token, result.certificate)
        }
    }

    /// Runs the plugin with `KUBERNETES_EXEC_INFO` and reads its ExecCredential from stdout.
    static func run(_ plugin: ExecCredentialPlugin) throws(KubeError) -> (token: String?, certificate: ExecCertificate?, expires: Date?) {
        let process = Process()
        if plugin.command.contains("/") {
            process.executableURL = URL(fileURLWithPath: plugin.command)
            process.arguments = plugin.arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [plugin.command] + plugin.arguments
        }
        var environment = ProcessInfo.processInfo.environment
        for entry in plugin.environment { environment[entry.name] = entry.value }
        var spec: JSONObject = [:]
        if let cluster = plugin.clusterInfo { spec["cluster"] = cluster }
        spec["interactive"] = false
        environment["KUBERNETES_EXEC_INFO"] = JSONWriter.string(["kind": "ExecCredential", "apiVersion": .string(plugin.apiVersion), "spec": .object(spec)])
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            let hint = plugin.installHint.map { "; \($0)" } ?? ""
            throw .credentialPlugin(command: plugin.command, message: "cannot start: \(error.localizedDescription)\(hint)")
        }
        // stderr is drained on another thread so a chatty plugin cannot block on a full pipe.
        let errorsBox = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorsBox.withLock { $0 = data }
            drained.signal()
        }.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        let errors = errorsBox.withLock { $0 }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw .credentialPlugin(command: plugin.command, message: "exited with status \(process.terminationStatus)\(text.isEmpty ? "" : ": \(text)")")
        }
        let json: JSON
        do throws(JSONError) {
            json = try JSONParser.parse(Array(output))
        } catch {
            throw .credentialPlugin(command: plugin.command, message: "output is not an ExecCredential: \(error)")
        }
        guard json["kind"]?.stringValue == "ExecCredential" else {
            throw .credentialPlugin(command: plugin.command, message: "output is not an ExecCredential (kind \(json["kind"].map { "\($0)" } ?? "missing"))")
        }
        guard json["apiVersion"]?.stringValue == plugin.apiVersion else {
            throw .credentialPlugin(command: plugin.command, message: "ExecCredential apiVersion \(json["apiVersion"]?.stringValue ?? "missing") does not match the kubeconfig's \(plugin.apiVersion)")
        }
        guard let status = json["status"] else {
            throw .credentialPlugin(command: plugin.command, message: "ExecCredential has no status")
        }
        var certificate: ExecCertificate?
        switch (status["clientCertificateData"]?.stringValue, status["clientKeyData"]?.stringValue) {
        case let (certificatePEM?, keyPEM?) where !certificatePEM.isEmpty && !keyPEM.isEmpty:
            certificate = ExecCertificate(certificatePEM: Array(certificatePEM.utf8), keyPEM: Array(keyPEM.utf8))
        case (nil, nil):
            break
        default:
            throw .credentialPlugin(command: plugin.command, message: "status.clientCertificateData and status.clientKeyData must be given together")
        }
        let token = status["token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        guard token != nil || certificate != nil else {
            throw .credentialPlugin(command: plugin.command, message: "ExecCredential status.token is missing (and no client certificate)")
        }
        var expires: Date?
        if let text = status["expirationTimestamp"]?.stringValue {
            guard let date = RFC3339.parse(text) else {
                throw .credentialPlugin(command: plugin.command, message: "status.expirationTimestamp \"\(text)\" is not RFC 3339")
            }
            expires = date
        }
        return (token, certificate, expires)
    }
}

/// A client certificate and key (PEM) from an exec credential plugin.
public struct ExecCertificate: Sendable, Equatable {
    public var certificatePEM: [UInt8]
    public var keyPEM: [UInt8]
}
