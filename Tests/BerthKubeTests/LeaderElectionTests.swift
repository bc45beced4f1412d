import BerthKube
import BerthKubeSim
import BerthModel
import BerthTestSupport
import Foundation
import Synchronization
import Testing

@Suite struct LeaderElectionTests {
    func elector(_ cluster: FakeCluster, _ identity: String) -> LeaderElector {
        LeaderElector(client: cluster.client,
                      configuration: LeaderElectionConfiguration(namespace: "berth-system", name: "berth-provisioner", identity: identity))
    }

    /// Two contenders stepped through time (15 s lease, 10 s renew deadline, 5 s period): the
    /// leader stops renewing (it is partitioned); it deposes itself at 10 s, the other takes over
    /// only after observing the record unchanged for 15 s. At no instant do both lead.
    @Test func forcedExpiryHandsOverWithoutOverlap() throws {
        try withFakeCluster { cluster in
            let a = elector(cluster, "replica-a")
            let b = elector(cluster, "replica-b")
            let start = ContinuousClock.now
            func at(_ seconds: Int) -> ContinuousClock.Instant { start + .seconds(seconds) }
            func checkNoOverlap(_ time: Int) {
                #expect(!(a.isLeader(at: at(time)) && b.isLeader(at: at(time))), "both lead at \(time) s")
            }

            #expect(a.step(now: at(0)))
            #expect(!b.step(now: at(0)))
            let lease = try Lease(json: try cluster.client.get(.leases, namespace: "berth-system", name: "berth-provisioner"))
            #expect(lease.holderIdentity == "replica-a" && lease.leaseDurationSeconds == 15)

            // A renews every 5 s; B keeps seeing a fresh record and stays follower.
            for time in stride(from: 5, through: 30, by: 5) {
                #expect(a.step(now: at(time)))
                #expect(!b.step(now: at(time)))
                checkNoOverlap(time)
            }
            // A is partitioned from 30 s on: no more renewals.
            for time in stride(from: 31, through: 60, by: 1) {
                let took = b.step(now: at(time))
                checkNoOverlap(time)
                if time < 45 { #expect(!took, "B took over early at \(time) s") }
                if time >= 40 { #expect(!a.isLeader(at: at(time)), "A still leads at \(time) s") }
                if took {
                    #expect(time >= 45)
                    break
                }
            }
            #expect(b.isLeader(at: at(46)))
            let after = try Lease(json: try cluster.client.get(.leases, namespace: "berth-system", name: "berth-provisioner"))
            #expect(after.holderIdentity == "replica-b")
            #expect(after.leaseTransitions == 1)
            // A comes back: it sees B's lease and does not take it.
            #expect(!a.step(now: at(47)))
            checkNoOverlap(47)
        }
    }

    /// Both see an expired lease at the same moment: optimistic concurrency lets exactly one win.
    @Test func racingCandidatesOneWins() throws {
        try withFakeCluster { cluster in
            let old = elector(cluster, "old")
            let start = ContinuousClock.now
            #expect(old.step(now: start))
            let a = elector(cluster, "a")
            let b = elector(cluster, "b")
            #expect(!a.step(now: start + .seconds(1)))
            #expect(!b.step(now: start + .seconds(1)))
            // Both read the same expired record, then write: the second write carries a stale
            // resourceVersion and gets 409.
            let winners = [a.step(now: start + .seconds(20)), b.step(now: start + .seconds(20))]
            #expect(winners.filter { $0 }.count == 1)
            let lease = try Lease(json: try cluster.client.get(.leases, namespace: "berth-system", name: "berth-provisioner"))
            #expect(lease.holderIdentity == (winners[0] ? "a" : "b"))
        }
    }

    /// The real loop with short durations: the first replica leads; when its lease is stolen
    /// (forced expiry by rewriting the Lease) it stops within the renew deadline; a second
    /// replica takes over after the first releases the lease on stop.
    @Test func runLoopStopsWhenTheLeaseIsLost() throws {
        try withFakeCluster { cluster in
            var configuration = LeaderElectionConfiguration(namespace: "berth-system", name: "lock", identity: "loop-a")
            configuration.leaseDuration = .seconds(3)
            configuration.renewDeadline = .seconds(2)
            configuration.retryPeriod = .milliseconds(100)
            let a = LeaderElector(client: cluster.client, configuration: configuration)
            let events = Mutex<[String]>([])
            a.start(onStartedLeading: { events.withLock { $0.append("a started") } },
                    onStoppedLeading: { events.withLock { $0.append("a stopped") } })
            #expect(waitUntil { events.withLock { $0 } == ["a started"] })
            // Another replica takes the lease by force (an operator, or a partition healing late).
            cluster.server.modify(.leases, namespace: "berth-system", name: "lock") { lease in
                guard case .object(var top) = lease, case .object(var spec)? = top["spec"] else { return }
                spec["holderIdentity"] = "intruder"
                spec["renewTime"] = .string(RFC3339.string(Date(), micro: true))
                top["spec"] = .object(spec)
                lease = .object(top)
            }
            // The renew deadline itself is checked with explicit instants in the step(now:) tests;
            // here real threads run, so only the outcome is asserted (tests never fail on timing).
            #expect(waitUntil(timeout: .seconds(20)) { events.withLock { $0 }.last == "a stopped" })

            // a campaigns again and wins once the intruder's lease expires (it never renews).
            #expect(waitUntil(timeout: .seconds(20)) { events.withLock { $0 }.last == "a started" })
            configuration.identity = "loop-b"
            let b = LeaderElector(client: cluster.client, configuration: configuration)
            b.start(onStartedLeading: { events.withLock { $0.append("b started") } },
                    onStoppedLeading: { events.withLock { $0.append("b stopped") } })
            // a stops and releases: b need not wait out the lease.
            a.stop()
            #expect(waitUntil(timeout: .seconds(20)) { events.withLock { $0 }.last == "b started" })
            b.stop()
            #expect(events.withLock { $0 } == ["a started", "a stopped", "a started", "a stopped", "b started", "b stopped"])
        }
    }
}
