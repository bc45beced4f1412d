import Foundation
import Synchronization

/// A token bucket: `burst` requests at once, then `qps` per second (client-go's default
/// flowcontrol.NewTokenBucketRateLimiter). A caller reserves a token and waits for it outside
/// the lock, so waits are fair in arrival order.
public final class RateLimiter: Sendable {
    public let qps: Double
    public let burst: Int
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
    }
    private let state: Mutex<State>

    public init(qps: Double, burst: Int, now: ContinuousClock.Instant = .now) {
        self.qps = qps
        self.burst = max(1, burst)
        state = Mutex(State(tokens: Double(max(1, burst)), last: now))
    }

    /// Takes a token; returns how long the caller must wait before using it.
    public func reserve(now: ContinuousClock.Instant = .now) -> Duration {
        guard qps > 0 else { return .zero }
        return state.withLock { state in
            let elapsed = now - state.last
            let seconds = elapsed.seconds
            if seconds > 0 {
                state.tokens = min(Double(burst), state.tokens + seconds * qps)
                state.last = now
            }
            state.tokens -= 1
            return state.tokens >= 0 ? .zero : .nanoseconds(Int64((-state.tokens / qps) * 1e9))
        }
    }

    /// Blocks until a token is available.
    public func acquire() {
        let wait = reserve()
        if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
    }
}
