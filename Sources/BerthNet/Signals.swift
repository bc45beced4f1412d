import CBerthLinux
import Glibc

/// Blocks SIGTERM and SIGINT in the calling thread; threads created afterwards inherit the mask.
///
/// Call this first thing in `main`, before starting any thread (the server's event loops block
/// these signals themselves, but other libraries' threads would not), so that the signals stay
/// pending for `waitForTerminationSignal()` instead of killing the process on an arbitrary thread.
public func blockTerminationSignals() {
    var set = terminationSignals()
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

/// Blocks SIGTERM/SIGINT (see `blockTerminationSignals()`, which should have been called before
/// any thread was started) and waits for one of them with `sigwait`. Returns the signal number.
public func waitForTerminationSignal() -> Int32 {
    var set = terminationSignals()
    pthread_sigmask(SIG_BLOCK, &set, nil)
    var signal: Int32 = 0
    while sigwait(&set, &signal) != 0 {}
    return signal
}

func terminationSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    return set
}
