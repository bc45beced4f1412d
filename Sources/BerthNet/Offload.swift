import Dispatch

/// Runs blocking work (this module's HTTP client, whose calls block) on a Dispatch thread, so a
/// slow answer never holds one of the few threads Swift concurrency runs every task on. Typed
/// throws pass through: the caller catches exactly what `body` throws.
public enum Offload {
    public static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
            DispatchQueue.global().async {
                do throws(E) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
