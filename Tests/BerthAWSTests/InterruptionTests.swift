@testable import BerthAWS
import BerthModel
import BerthProvisioner
import BerthTestSupport
import Foundation
import Testing

/// EventBridge events as the rules in README deliver them to SQS (the shapes of AWS's documented
/// examples), and what Berth reads from each.
enum EventBridgeEvents {
    static func spotWarning(_ instance: String) -> String {
        #"{"version":"0","id":"7a5d0a2f-3c2b-4d1e-9f5e-0d8c2a1b3c4d","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-12-04T22:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/\#(instance)"],"detail":{"instance-id":"\#(instance)","instance-action":"terminate"}}"#
    }
    static func rebalance(_ instance: String) -> String {
        #"{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","account":"123456789012","time":"2026-12-04T21:58:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/\#(instance)"],"detail":{"instance-id":"\#(instance)"}}"#
    }
    static func stateChange(_ instance: String, _ state: String) -> String {
        #"{"version":"0","id":"ee376907-2647-4179-9203-343cfb3017a4","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","time":"2026-12-04T22:01:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/\#(instance)"],"detail":{"instance-id":"\#(instance)","state":"\#(state)"}}"#
    }
    static func scheduledChange(_ instance: String) -> String {
        #"{"version":"0","id":"121345678-1234-1234-1234-123456789012","detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","time":"2026-12-04T20:00:00Z","region":"us-east-1","resources":["\#(instance)"],"detail":{"eventArn":"arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_ABC123","service":"EC2","eventTypeCode":"AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED","eventTypeCategory":"scheduledChange","startTime":"Sat, 06 Dec 2026 00:00:00 GMT","endTime":"Sat, 06 Dec 2026 00:20:00 GMT","eventDescription":[{"language":"en_US","latestDescription":"EC2 has detected degradation of the underlying hardware hosting your instance."}],"affectedEntities":[{"entityValue":"\#(instance)"}]}}"#
    }
}

@Suite struct InterruptionEventTests {
    @Test func eachRuleDeliversANoticeBerthReads() {
        let time = RFC3339.parse("2026-12-04T22:00:00Z")
        #expect(SQSInterruptionQueue.notice(EventBridgeEvents.spotWarning("i-0a1")) == InterruptionNotice(kind: .spotInterruption, instanceID: "i-0a1", time: time))
        #expect(SQSInterruptionQueue.notice(EventBridgeEvents.rebalance("i-0a2"))?.kind == .rebalanceRecommendation)
        #expect(SQSInterruptionQueue.notice(EventBridgeEvents.stateChange("i-0a3", "shutting-down"))?.kind == .stateChange("shutting-down"))
        #expect(SQSInterruptionQueue.notice(EventBridgeEvents.stateChange("i-0a3", "terminated"))?.kind == .stateChange("terminated"))
        for state in ["pending", "running", "stopping", "stopped"] {
            // Stopping and stopped are warm capacity's own StopInstances: never drained for.
            #expect(SQSInterruptionQueue.notice(EventBridgeEvents.stateChange("i-0a3", state)) == nil, "\(state) is not an interruption")
        }
        #expect(SQSInterruptionQueue.notice(EventBridgeEvents.scheduledChange("i-0a4")) == InterruptionNotice(kind: .scheduledChange, instanceID: "i-0a4", time: RFC3339.parse("2026-12-04T20:00:00Z")))
        #expect(SQSInterruptionQueue.notice("not json") == nil)
        #expect(SQSInterruptionQueue.notice(#"{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{}}"#) == nil)
    }
}

extension EC2CloudMotoTests {
    /// The test's own SQS client (not Berth's: its calls are not Berth's actions).
    func sqsClient() throws -> AWSJSONClient {
        try AWSJSONClient(endpoint: try AWSEndpoint(url: moto.endpoint, what: "moto"), region: "us-east-1", service: "sqs", targetPrefix: "AmazonSQS",
                          jsonVersion: "1.0", credentials: credentials, sleep: { _ in })
    }

    /// A queue with these bodies in it, as EventBridge would leave them; its URL.
    func queue(_ name: String, _ bodies: [String]) async throws -> String {
        let sqs = try sqsClient()
        let url = try #require(try await sqs.call("CreateQueue", ["QueueName": .string(name)])["QueueUrl"]?.stringValue)
        for body in bodies { _ = try await sqs.call("SendMessage", ["QueueUrl": .string(url), "MessageBody": .string(body)]) }
        return url
    }

    /// Reads the queue through Berth's EC2Cloud and deletes what it read.
    func drainQueue(_ name: String, recorder: AWSCallRecorder?) async throws -> [InterruptionNotice] {
        var configuration = try configuration()
        configuration.interruptionQueue = name
        configuration.sqsEndpoint = try AWSEndpoint(url: moto.endpoint, what: "moto")
        let cloud = try EC2Cloud(configuration: configuration, credentials: credentials, retry: AWSRetryPolicy(maxAttempts: 2), sleep: { _ in },
                                 recorder: recorder)
        let queue = try #require(cloud.interruptions)
        var notices: [InterruptionNotice] = []
        for _ in 0..<5 {
            let batch = try await queue.receive()
            notices += batch.notices
            try await queue.acknowledge(batch.receipts)
            if batch.receipts.isEmpty { break }
        }
        return notices
    }

    @Test func interruptionNoticesAreReadFromSQSAndDeleted() async throws {
        let url = try await queue("berth-interruptions", [
            EventBridgeEvents.spotWarning("i-0000000000000aaa1"), EventBridgeEvents.rebalance("i-0000000000000aaa2"),
            EventBridgeEvents.stateChange("i-0000000000000aaa3", "terminated"), EventBridgeEvents.scheduledChange("i-0000000000000aaa4"),
            #"{"detail-type":"Something Else","source":"aws.s3"}"#,
            EventBridgeEvents.stateChange("i-0000000000000aaa5", "stopping"), EventBridgeEvents.stateChange("i-0000000000000aaa5", "stopped"),
        ])
        let notices = try await drainQueue("berth-interruptions", recorder: nil)
        #expect(notices.map(\.instanceID).sorted() == ["i-0000000000000aaa1", "i-0000000000000aaa2", "i-0000000000000aaa3", "i-0000000000000aaa4"])
        #expect(Set(notices.map(\.kind.description)) == ["spot", "rebalance", "state terminated", "scheduled"])
        let left = try await sqsClient().call("GetQueueAttributes", ["QueueUrl": .string(url), "AttributeNames": ["All"]])
        #expect(left["Attributes"]?["ApproximateNumberOfMessages"] == "0" && left["Attributes"]?["ApproximateNumberOfMessagesNotVisible"] == "0",
                "every message deleted, the unreadable and the stop notifications too: \(left)")
    }
}

extension InterruptionNotice.Kind {
    var description: String {
        switch self {
        case .spotInterruption: "spot"
        case .rebalanceRecommendation: "rebalance"
        case .stateChange(let state): "state \(state)"
        case .scheduledChange: "scheduled"
        }
    }
}
