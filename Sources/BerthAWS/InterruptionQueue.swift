import BerthModel
import BerthProvisioner
import Foundation
import Synchronization

/// Spot interruptions and other instance notices from an SQS queue that EventBridge rules feed
/// (SQS's JSON protocol, `AmazonSQS`, SigV4 service `sqs`): `ReceiveMessage` (up to 10, a short
/// wait), each body an EventBridge event, `DeleteMessage` once the provisioner has taken them.
public final class SQSInterruptionQueue: InterruptionSource {
    public let client: AWSJSONClient
    /// A queue name (its URL is asked once with `GetQueueUrl`) or a queue URL.
    public let queue: String
    public let waitSeconds: Int
    private let url = Mutex<String?>(nil)

    public init(client: AWSJSONClient, queue: String, waitSeconds: Int = 1) {
        self.client = client
        self.queue = queue
        self.waitSeconds = waitSeconds
    }

    public func queueURL() async throws(AWSError) -> String {
        if queue.hasPrefix("https://") || queue.hasPrefix("http://") { return queue }
        if let known = url.withLock({ $0 }) { return known }
        let answer = try await client.call("GetQueueUrl", ["QueueName": .string(queue)])
        guard let found = answer["QueueUrl"]?.stringValue else { throw .malformedResponse(action: "GetQueueUrl", reason: "no QueueUrl") }
        url.withLock { $0 = found }
        return found
    }

    public func receive() async throws -> (notices: [InterruptionNotice], receipts: [String]) {
        let answer = try await client.call("ReceiveMessage", [
            "QueueUrl": .string(try await queueURL()), "MaxNumberOfMessages": 10, "WaitTimeSeconds": .number(waitSeconds),
        ])
        var notices: [InterruptionNotice] = []
        var receipts: [String] = []
        for message in answer["Messages"]?.arrayValue ?? [] {
            guard let receipt = message["ReceiptHandle"]?.stringValue else { continue }
            receipts.append(receipt)
            if let body = message["Body"]?.stringValue, let notice = Self.notice(body) { notices.append(notice) }
        }
        return (notices, receipts)
    }

    public func acknowledge(_ receipts: [String]) async throws {
        let url = try await queueURL()
        for receipt in receipts {
            _ = try await client.call("DeleteMessage", ["QueueUrl": .string(url), "ReceiptHandle": .string(receipt)])
        }
    }

    /// An EventBridge event as the rules in README deliver it; nil for anything else (deleted
    /// unread), state changes other than `shutting-down` and `terminated` included.
    public static func notice(_ body: String) -> InterruptionNotice? {
        guard let event = try? JSONParser.parse(body), let type = event["detail-type"]?.stringValue else { return nil }
        let time = event["time"]?.stringValue.flatMap(RFC3339.parse)
        let detail = event["detail"]
        let instance = detail?["instance-id"]?.stringValue
        switch (event["source"]?.stringValue, type) {
        case ("aws.ec2", "EC2 Spot Instance Interruption Warning"):
            return instance.map { InterruptionNotice(kind: .spotInterruption, instanceID: $0, time: time) }
        case ("aws.ec2", "EC2 Instance Rebalance Recommendation"):
            return instance.map { InterruptionNotice(kind: .rebalanceRecommendation, instanceID: $0, time: time) }
        case ("aws.ec2", "EC2 Instance State-change Notification"):
            // Only an instance going away: `stopping`/`stopped` is what warm capacity's own
            // StopInstances causes, and the provisioner reads a stopped instance's state from
            // `list`; draining and terminating it on this notice would destroy warm capacity.
            guard let instance, let state = detail?["state"]?.stringValue, ["shutting-down", "terminated"].contains(state) else { return nil }
            return InterruptionNotice(kind: .stateChange(state), instanceID: instance, time: time)
        case ("aws.health", "AWS Health Event"):
            guard detail?["service"]?.stringValue == "EC2", detail?["eventTypeCategory"]?.stringValue == "scheduledChange",
                  let entity = detail?["affectedEntities"]?.arrayValue?.compactMap({ $0["entityValue"]?.stringValue }).first(where: { $0.hasPrefix("i-") })
            else { return nil }
            return InterruptionNotice(kind: .scheduledChange, instanceID: entity, time: time)
        default:
            return nil
        }
    }
}
