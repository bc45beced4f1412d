import Foundation
import Synchronization

/// A source of AWS credentials. `fetch` asks the source (a file, STS, an HTTP endpoint) each time;
/// wrap it in ``RefreshingCredentials`` to keep temporary credentials until shortly before they expire.
public protocol AWSCredentialProvider: Sendable {
    /// What the credentials come from, for messages: `environment`, `web identity (arn:...)`.
    var name: String { get }
    func fetch() async throws(AWSError) -> AWSCredentials
    /// Forgets cached credentials (after AWS said they expired). Returns whether there was a
    /// cache to forget, i.e. whether fetching again can give other credentials.
    @discardableResult
    func invalidate() -> Bool
}

extension AWSCredentialProvider {
    /// Nothing cached: the same credentials would come back.
    @discardableResult
    public func invalidate() -> Bool { false }
}

/// Credentials known up front: the environment's, a profile's keys.
public struct StaticCredentials: AWSCredentialProvider {
    public let name: String
    public let credentials: AWSCredentials

    public init(name: String, credentials: AWSCredentials) {
        self.name = name
        self.credentials = credentials
    }

    public func fetch() async throws(AWSError) -> AWSCredentials { credentials }
}

/// Caches another provider's credentials: long-term keys for good, temporary ones until
/// `refreshBefore` before they expire. A failed refresh keeps the old credentials while they are
/// still valid (as the SDKs' advisory refresh does) and throws only once they have expired.
/// One refresh at a time: callers that find the credentials stale while a refresh is under way
/// wait for that one (parallel launches at expiry would otherwise each call STS or IMDS).
public final class RefreshingCredentials: AWSCredentialProvider {
    public let source: any AWSCredentialProvider
    public let refreshBefore: TimeInterval
    private let now: @Sendable () -> Date

    private struct State {
        var credentials: AWSCredentials?
        /// The refresh under way, shared by every caller that needs it.
        var refresh: Task<Result<AWSCredentials, AWSError>, Never>?
        /// Callers waiting for a refresh another caller started.
        var waiting = 0
    }
    private let state = Mutex(State())
    private let fetches = Atomic<Int>(0)

    public init(_ source: any AWSCredentialProvider, refreshBefore: TimeInterval = 300, now: @escaping @Sendable () -> Date = { Date() }) {
        self.source = source
        self.refreshBefore = refreshBefore
        self.now = now
    }

    public var name: String { source.name }
    /// How many times the source was asked (tests check caching with this).
    public var fetchCount: Int { fetches.load(ordering: .relaxed) }
    /// How many callers are waiting for a refresh another caller started (tests check sharing with this).
    public var waitingCount: Int { state.withLock { $0.waiting } }

    private enum Step {
        case cached(AWSCredentials)
        case refresh(Task<Result<AWSCredentials, AWSError>, Never>, held: AWSCredentials?, joined: Bool)
    }

    public func fetch() async throws(AWSError) -> AWSCredentials {
        let current = now()
        let step = state.withLock { state -> Step in
            if let held = state.credentials, held.expiration.map({ current < $0.addingTimeInterval(-refreshBefore) }) ?? true {
                return .cached(held)
            }
            if let refresh = state.refresh {
                state.waiting += 1
                return .refresh(refresh, held: state.credentials, joined: true)
            }
            let refresh = Task { await self.refreshFromSource() }
            state.refresh = refresh
            return .refresh(refresh, held: state.credentials, joined: false)
        }
        switch step {
        case .cached(let credentials):
            return credentials
        case .refresh(let refresh, let held, let joined):
            let result = await refresh.value
            if joined { state.withLock { $0.waiting -= 1 } }
            switch result {
            case .success(let fresh):
                return fresh
            case .failure(let error):
                if let held, let expiration = held.expiration, current < expiration { return held }
                throw error
            }
        }
    }

    private func refreshFromSource() async -> Result<AWSCredentials, AWSError> {
        fetches.wrappingAdd(1, ordering: .relaxed)
        let result: Result<AWSCredentials, AWSError>
        do throws(AWSError) {
            result = .success(try await source.fetch())
        } catch {
            result = .failure(error)
        }
        state.withLock { state in
            if case .success(let fresh) = result { state.credentials = fresh }
            state.refresh = nil
        }
        return result
    }

    @discardableResult
    public func invalidate() -> Bool {
        state.withLock { $0.credentials = nil }
        return true
    }
}

/// Reads small local files (tokens, the shared credentials files); replaceable in tests.
public struct AWSFileReader: Sendable {
    public var read: @Sendable (String) -> [UInt8]?

    public init(read: @escaping @Sendable (String) -> [UInt8]?) {
        self.read = read
    }

    public static let disk = AWSFileReader { path in
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    /// A token file's contents, trimmed; an error naming the file when missing or empty.
    func token(_ path: String, source: String) throws(AWSError) -> String {
        guard let bytes = read(path) else { throw .credentials(source: source, message: "cannot read token file \(path)") }
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .credentials(source: source, message: "token file \(path) is empty") }
        return token
    }
}
