import Synchronization

/// The AWS actions a set of clients called, as IAM names them (`ec2:CreateFleet`,
/// `pricing:GetProducts`): what the IAM-policy test compares with the policy in the repository.
/// A client records an action when it sends it, whatever AWS answers.
public final class AWSCallRecorder: Sendable {
    private let recorded = Mutex<Set<String>>([])

    public init() {}

    public func record(service: String, action: String) {
        _ = recorded.withLock { $0.insert("\(service):\(action)") }
    }

    public var actions: Set<String> { recorded.withLock { $0 } }
}
