import BerthNet
import BerthTestSupport
import Foundation
import Synchronization
import Testing

struct SignalTests {
    /// The signal is sent to the waiting thread only (pthread_kill), so no other thread of the
    /// test process can be hit by it.
    @Test(arguments: [SIGTERM, SIGINT])
    func waitForTerminationSignalReturnsTheSignal(_ signal: Int32) throws {
        let waiter = Mutex<pthread_t?>(nil)
        let received = Atomic<Int32>(0)
        let thread = Thread {
            blockTerminationSignals()
            waiter.withLock { $0 = pthread_self() }
            received.store(waitForTerminationSignal(), ordering: .relaxed)
        }
        thread.start()
        #expect(waitUntil { waiter.withLock { $0 } != nil })
        guard let target = waiter.withLock({ $0 }) else { return }
        #expect(pthread_kill(target, signal) == 0)
        #expect(waitUntil { received.load(ordering: .relaxed) != 0 })
        #expect(received.load(ordering: .relaxed) == signal)
    }
}
