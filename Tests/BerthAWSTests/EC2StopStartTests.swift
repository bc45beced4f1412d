@testable import BerthAWS
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import BerthTestSupport
import Foundation
import Testing

/// StopInstances and StartInstances as the port's stop and start (warm capacity's stopped tier):
/// what EC2 answers that moto does not model (IncorrectInstanceState, capacity, refusals,
/// throttling) against the stub; the round trip against moto below.
extension EC2CloudStubTests {
    static let id = "i-0123456789abcdef0"
    static let providerID = "aws:///us-east-1a/\(id)"

    static func described(_ state: String, lifecycle: String? = nil) -> HTTPResponse {
        StubServer.xml(200, """
            <DescribeInstancesResponse><reservationSet><item><instancesSet><item>
              <instanceId>\(id)</instanceId><instanceType>g4dn.xlarge</instanceType><placement><availabilityZone>us-east-1a</availabilityZone></placement>
              <instanceState><code>0</code><name>\(state)</name></instanceState><launchTime>2026-12-04T20:00:00.000Z</launchTime>
              \(lifecycle.map { "<instanceLifecycle>\($0)</instanceLifecycle>" } ?? "")
            </item></instancesSet></item></reservationSet></DescribeInstancesResponse>
            """)
    }

    static func changed(_ action: String, from previous: String, to current: String) -> HTTPResponse {
        StubServer.xml(200, """
            <\(action)Response><instancesSet><item><instanceId>\(id)</instanceId>
              <currentState><code>64</code><name>\(current)</name></currentState><previousState><code>16</code><name>\(previous)</name></previousState>
            </item></instancesSet></\(action)Response>
            """)
    }

    /// A stub answering `action` with `answer` and DescribeInstances with the instance in `state`.
    func stub(_ action: String, _ answer: HTTPResponse, describedAs state: String = "running", lifecycle: String? = nil) throws -> StubServer {
        try StubServer { request, _ in
            StubServer.form(request)["Action"] == "DescribeInstances" ? Self.described(state, lifecycle: lifecycle) : answer
        }
    }

    static let incorrectState = StubServer.ec2Error(400, code: "IncorrectInstanceState", message: "The instance 'i-0123456789abcdef0' is not in a state from which it can be stopped.")

    @Test func stopSendsStopInstancesForTheInstance() async throws {
        let server = try stub("StopInstances", Self.changed("StopInstances", from: "running", to: "stopping"))
        defer { server.shutdown() }
        try await cloud(server).stop(providerID: Self.providerID)
        let forms = server.requests.map(StubServer.form)
        #expect(forms.map { $0["Action"] } == ["StopInstances"])
        #expect(forms.first?["InstanceId.1"] == Self.id)
        #expect(forms.first?["Force"] == nil && forms.first?["Hibernate"] == nil)
    }

    /// IncorrectInstanceState says only "not now": the instance's state decides what it means.
    @Test(arguments: [
        ("pending", CloudError.invalidRequest("stop \(providerID): the instance is pending: only a running instance can be stopped")),
        ("stopping", nil), ("stopped", nil),
        ("terminated", CloudError.notFound(providerID: providerID)), ("shutting-down", CloudError.notFound(providerID: providerID)),
    ] as [(String, CloudError?)])
    func stopRefusedForItsStateSaysWhy(state: String, expected: CloudError?) async throws {
        let server = try stub("StopInstances", Self.incorrectState, describedAs: state)
        defer { server.shutdown() }
        if let expected {
            await #expect(throws: expected) { try await cloud(server).stop(providerID: Self.providerID) }
        } else {
            try await cloud(server).stop(providerID: Self.providerID)
        }
        #expect(server.requests.map { StubServer.form($0)["Action"] } == ["StopInstances", "DescribeInstances"])
    }

    @Test(arguments: [
        ("stopping", CloudError.invalidRequest("\(providerID) is still stopping: start it once it is stopped")),
        ("pending", nil), ("running", nil),
        ("terminated", CloudError.notFound(providerID: providerID)),
    ] as [(String, CloudError?)])
    func startRefusedForItsStateSaysWhy(state: String, expected: CloudError?) async throws {
        let server = try stub("StartInstances", Self.incorrectState, describedAs: state)
        defer { server.shutdown() }
        if let expected {
            await #expect(throws: expected) { try await cloud(server).start(providerID: Self.providerID) }
        } else {
            try await cloud(server).start(providerID: Self.providerID)
        }
    }

    /// No capacity for the stopped instance's type in its zone: its own offering, described.
    @Test(arguments: [nil, "spot"] as [String?])
    func startWithoutCapacityNamesTheInstancesOffering(lifecycle: String?) async throws {
        let server = try stub(
            "StartInstances", StubServer.ec2Error(500, code: "InsufficientInstanceCapacity", message: "We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone you requested (us-east-1a)."),
            describedAs: "stopped", lifecycle: lifecycle)
        defer { server.shutdown() }
        let offering = OfferingKey(instanceType: "g4dn.xlarge", zone: "us-east-1a", capacityType: lifecycle ?? "on-demand")
        await #expect(throws: CloudError.insufficientCapacity(offerings: [offering])) { try await cloud(server).start(providerID: Self.providerID) }
        // EC2 sends it as a 500: the client retries it, as AWS's SDKs do, then the offering is read.
        let actions = server.requests.map { StubServer.form($0)["Action"] }
        #expect(actions.last == "DescribeInstances" && actions.dropLast().allSatisfy { $0 == "StartInstances" }, "\(actions)")
    }

    @Test func startAndStopMapEC2sOtherAnswers() async throws {
        let cases: [(String, HTTPResponse, CloudError)] = [
            ("StopInstances", StubServer.ec2Error(400, code: "InvalidInstanceID.NotFound", message: "The instance ID 'i-0123456789abcdef0' does not exist"),
             .notFound(providerID: Self.providerID)),
            ("StartInstances", StubServer.ec2Error(400, code: "InvalidInstanceID.NotFound", message: "The instance ID 'i-0123456789abcdef0' does not exist"),
             .notFound(providerID: Self.providerID)),
            ("StopInstances", StubServer.ec2Error(403, code: "UnauthorizedOperation", message: "You are not authorized to perform this operation."),
             .refused(action: "StopInstances", code: "UnauthorizedOperation", message: "You are not authorized to perform this operation.")),
            ("StartInstances", StubServer.ec2Error(403, code: "UnauthorizedOperation", message: "You are not authorized to perform this operation."),
             .refused(action: "StartInstances", code: "UnauthorizedOperation", message: "You are not authorized to perform this operation.")),
            ("StopInstances", StubServer.ec2Error(503, code: "RequestLimitExceeded", message: "Request limit exceeded."),
             .throttled(operation: "stop \(Self.providerID)")),
            ("StartInstances", StubServer.ec2Error(503, code: "RequestLimitExceeded", message: "Request limit exceeded."),
             .throttled(operation: "start \(Self.providerID)")),
        ]
        for (action, answer, expected) in cases {
            let server = try stub(action, answer)
            defer { server.shutdown() }
            let cloud = try cloud(server)
            await #expect(throws: expected, "\(action)") {
                if action == "StopInstances" { try await cloud.stop(providerID: Self.providerID) } else { try await cloud.start(providerID: Self.providerID) }
            }
        }
        // A spot instance: EC2 will not stop it.
        let spot = try stub("StopInstances", StubServer.ec2Error(400, code: "UnsupportedOperation", message: "You can't stop the Spot Instance 'i-0123456789abcdef0' because it is associated with a one-time Spot Instance request."))
        defer { spot.shutdown() }
        await #expect {
            try await cloud(spot).stop(providerID: Self.providerID)
        } throws: { error in
            guard case CloudError.invalidRequest(let message) = error else { return false }
            return message.contains("UnsupportedOperation") && message.contains("one-time Spot Instance request")
        }
        // Never sent: a provider id of another cloud.
        let unused = try stub("StopInstances", Self.empty)
        defer { unused.shutdown() }
        await #expect(throws: CloudError.invalidRequest("sim:///us-east-1a/i-01 is not an EC2 provider id (aws:///<zone>/i-...)")) {
            try await cloud(unused).stop(providerID: "sim:///us-east-1a/i-01")
        }
        #expect(unused.requests.isEmpty)
    }

    @Test func describedStoppingAndStoppedAreTheirOwnStates() async throws {
        for (state, expected) in [("stopping", CloudInstance.State.stopping), ("stopped", .stopped), ("running", .running), ("pending", .pending)] {
            let server = try stub("DescribeInstances", Self.empty, describedAs: state)
            defer { server.shutdown() }
            #expect(try await cloud(server).get(providerID: Self.providerID).state == expected)
        }
    }
}

extension EC2CloudMotoTests {
    /// The round trip on moto (which stops and starts at once: `stopped`, then `running`, where
    /// EC2 passes through `stopping` and `pending`; the stub tests cover those).
    @Test func stopListStartAndTerminateAStoppedInstance() async throws {
        let cloud = try cloud(subnets: try await subnets())
        let instance = try await cloud.create(Self.request("launch-warm-1", cluster: "moto-warm"))
        let id = instance.providerID

        try await cloud.stop(providerID: id)
        #expect([.stopping, .stopped].contains(try await cloud.get(providerID: id).state))
        let listed = try await cloud.list(clusterTag: "moto-warm")
        #expect(listed.map(\.providerID) == [id], "a stopped instance is still the cluster's")
        #expect(listed.allSatisfy { [.stopping, .stopped].contains($0.state) })
        #expect(listed.first?.launchID == "launch-warm-1")
        // Stopping again is not an error.
        try await cloud.stop(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .stopped)

        try await cloud.start(providerID: id)
        #expect([.pending, .running].contains(try await cloud.get(providerID: id).state))
        try await cloud.start(providerID: id)
        #expect(try await cloud.get(providerID: id).state == .running)

        // A stopped instance is terminated like any other.
        try await cloud.stop(providerID: id)
        try await cloud.delete(providerID: id)
        await #expect(throws: CloudError.notFound(providerID: id)) { _ = try await cloud.get(providerID: id) }
        #expect(try await cloud.list(clusterTag: "moto-warm").isEmpty)

        let unknown = "aws:///us-east-1a/i-0123456789abcdef0"
        await #expect(throws: CloudError.notFound(providerID: unknown)) { try await cloud.stop(providerID: unknown) }
        await #expect(throws: CloudError.notFound(providerID: unknown)) { try await cloud.start(providerID: unknown) }
    }

    /// Stop protection set by someone else: a refusal with EC2's code and message, the instance
    /// left running.
    @Test func aStopProtectedInstanceIsARefusal() async throws {
        let cloud = try cloud(subnets: try await subnets())
        let instance = try await cloud.create(Self.request("launch-warm-protected", cluster: "moto-warm-protected"))
        let id = try #require(ProviderID(instance.providerID)?.instanceID)
        _ = try await self.cloud().api.client.call("ModifyInstanceAttribute", [("InstanceId", id), ("DisableApiStop.Value", "true")])
        await #expect {
            try await cloud.stop(providerID: instance.providerID)
        } throws: { error in
            guard case CloudError.refused("StopInstances", "OperationNotPermitted", let message) = error else { return false }
            return message.contains("disableApiStop")
        }
        #expect(try await cloud.get(providerID: instance.providerID).state == .running)
        _ = try await self.cloud().api.client.call("ModifyInstanceAttribute", [("InstanceId", id), ("DisableApiStop.Value", "false")])
        try await cloud.delete(providerID: instance.providerID)
    }
}
