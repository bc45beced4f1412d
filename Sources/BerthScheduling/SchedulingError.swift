/// The one error type of BerthScheduling. Each case names what was wrong and the value seen, so a
/// message can reach a user unchanged ("pod jhub/jupyter-alice: spec.containers[0]...").
public enum SchedulingError: Error, Equatable, CustomStringConvertible {
    /// A pod whose fields cannot be read as the API would hold them.
    case invalidPod(pod: String, field: String, message: String)

    public var description: String {
        switch self {
        case let .invalidPod(pod, field, message): "pod \(pod): \(field): \(message)"
        }
    }
}
