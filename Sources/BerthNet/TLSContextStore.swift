import Glibc
import Logging
import Synchronization

/// Owns the current server `SSL_CTX` and replaces it when the certificate files change.
///
/// Change detection compares file *contents* (read through symlinks), so it sees an in-place
/// rewrite, a rename over the file, and a Kubernetes Secret volume's `..data` symlink swap alike,
/// regardless of mtimes. The files are a few KB: reading them every `reloadInterval` is cheap.
/// New handshakes use the new context; established connections keep the one they started with.
public final class TLSContextStore: Sendable {
    public let configuration: TLSServerConfiguration
    private let logger: Logger
    private let onReload: @Sendable (Result<Void, any Error>) -> Void

    private struct FileContents: Equatable {
        var certificate: [UInt8]
        var privateKey: [UInt8]
        var clientCA: [UInt8]?
    }

    private struct State {
        var context: SSLContext
        var loaded: FileContents
        /// The last contents that failed to load: not retried (nor re-logged) until they change again.
        var rejected: FileContents?
        /// The last read error reported, so a missing file is reported once, not every poll.
        var readError: String?
        var generation: Int
        var nextPoll: UInt64
    }

    private let state: Mutex<State>
    /// Serialises reloads; never held by the handshake path.
    private let reloadLock = Mutex<Void>(())

    /// Loads the initial pair; a missing, unreadable or mismatched file throws an error naming it.
    public init(
        configuration: TLSServerConfiguration,
        logger: Logger,
        onReload: @escaping @Sendable (Result<Void, any Error>) -> Void = { _ in }
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.onReload = onReload
        let contents = try Self.read(configuration)
        let context = try SSLContext(
            certificatePEM: contents.certificate, privateKeyPEM: contents.privateKey,
            clientCAPEM: contents.clientCA, files: configuration)
        state = Mutex(State(
            context: context, loaded: contents, rejected: nil, readError: nil, generation: 1,
            nextPoll: monotonicNanos() &+ configuration.reloadInterval.nanoseconds))
        logger.debug("TLS certificate loaded", metadata: ["file": "\(configuration.certificateFile)"])
    }

    /// The context new connections are accepted with.
    var currentContext: SSLContext { state.withLock { $0.context } }

    /// Whether the certificate served now can still be trusted: nil when ready, else why not
    /// (expired). For a readiness probe that cannot itself speak TLS with a client certificate.
    public func readinessProblem(now: Int = Int(time(nil))) -> String? {
        guard let notAfter = currentContext.notAfter else { return nil }
        return now >= notAfter ? "the serving certificate \(configuration.certificateFile) expired" : nil
    }

    /// Increases by one with every successful (re)load.
    public var generation: Int { state.withLock { $0.generation } }

    /// Re-reads the files; when they changed, loads and installs the new pair.
    /// Returns true if a new pair was installed. A bad pair is logged, reported through
    /// `onReload(.failure)` and the current one kept.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        reloadLock.withLock { _ in
            let (loaded, rejected) = state.withLock { ($0.loaded, $0.rejected) }
            let contents: FileContents
            do {
                contents = try Self.read(configuration)
            } catch {
                // Mid-rotation a file may be briefly missing; keep serving, report once per error text.
                let text = "\(error)"
                let isNew = state.withLock { state in
                    defer { state.readError = text }
                    return state.readError != text
                }
                if isNew {
                    logger.warning("TLS reload: cannot read certificate files; keeping the current certificate",
                                   metadata: ["error": "\(text)"])
                    onReload(.failure(error))
                }
                return false
            }
            state.withLock { $0.readError = nil }
            if contents == loaded || contents == rejected { return false }
            do {
                let context = try SSLContext(
                    certificatePEM: contents.certificate, privateKeyPEM: contents.privateKey,
                    clientCAPEM: contents.clientCA, files: configuration)
                state.withLock {
                    $0.context = context
                    $0.loaded = contents
                    $0.rejected = nil
                    $0.generation += 1
                }
                logger.info("TLS certificate reloaded", metadata: ["file": "\(configuration.certificateFile)"])
                onReload(.success(()))
                return true
            } catch {
                state.withLock { $0.rejected = contents }
                logger.error("TLS reload failed; keeping the current certificate", metadata: ["error": "\(error)"])
                onReload(.failure(error))
                return false
            }
        }
    }

    /// Called by an event loop on every iteration; reloads at most every `reloadInterval`.
    /// Returns nanoseconds until the next poll is due.
    func pollIfDue(now: UInt64) -> UInt64 {
        let due = state.withLock { state -> Bool in
            guard now >= state.nextPoll else { return false }
            state.nextPoll = now &+ configuration.reloadInterval.nanoseconds
            return true
        }
        if due { reloadIfChanged() }
        return state.withLock { $0.nextPoll > now ? $0.nextPoll - now : 0 }
    }

    private static func read(_ configuration: TLSServerConfiguration) throws(NetError) -> FileContents {
        FileContents(
            certificate: try readFile(configuration.certificateFile),
            privateKey: try readFile(configuration.privateKeyFile),
            clientCA: try configuration.clientCAFile.map { path throws(NetError) in try readFile(path) })
    }

    /// Reads a whole (small) file, following symlinks. Capped at 1 MiB: PEM files are KBs.
    static func readFile(_ path: String) throws(NetError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw .certificate(file: path, reason: "cannot open: \(String(cString: strerror(errno)))", queue: [])
        }
        defer { close(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .certificate(file: path, reason: "cannot read: \(String(cString: strerror(errno)))", queue: [])
            }
            if count == 0 { break }
            contents.append(contentsOf: chunk[0..<count])
            if contents.count > 1024 * 1024 { throw .certificate(file: path, reason: "file larger than 1 MiB", queue: []) }
        }
        return contents
    }
}
