@testable import BerthNet
import Testing

/// The timer structure of the event loops, driven with plain numbers instead of a clock.
struct DeadlineListsTests {
    /// handshake 10, request 20, idle 90, idleRelease 1, idleRest 89, write 20, linger 2, drainIdle 5 (units).
    static let timeouts: [UInt64] = [10, 20, 90, 1, 89, 20, 2, 5]

    private func drain(_ lists: inout DeadlineLists, now: UInt64) -> [Int32] {
        var expired: [Int32] = []
        while let (id, _) = lists.popExpired(now: now) { expired.append(id) }
        return expired
    }

    @Test func expiresInDeadlineOrderAcrossKinds() {
        var lists = DeadlineLists(timeouts: Self.timeouts)
        lists.arm(5, .idle, now: 0)       // 90
        lists.arm(6, .request, now: 1)    // 21
        lists.arm(7, .handshake, now: 2)  // 12
        lists.arm(8, .request, now: 3)    // 23
        #expect(lists.nextDeadline == 12)
        #expect(drain(&lists, now: 11).isEmpty)
        #expect(drain(&lists, now: 12) == [7])
        #expect(drain(&lists, now: 30) == [6, 8])
        #expect(lists.nextDeadline == 90)
        #expect(drain(&lists, now: 90) == [5])
        #expect(lists.nextDeadline == nil)
    }

    @Test func rearmingMovesToTheBackAndDisarmRemoves() {
        var lists = DeadlineLists(timeouts: Self.timeouts)
        for id: Int32 in 0..<5 { lists.arm(id, .idle, now: UInt64(id)) }
        lists.arm(0, .idle, now: 10)  // a request on connection 0 restarts its idle time
        lists.disarm(2)
        lists.disarm(2)  // idempotent
        #expect(lists.kind(of: 2) == nil)
        #expect(lists.deadline(of: 0) == 100)
        #expect(drain(&lists, now: 95) == [1, 3, 4])
        #expect(drain(&lists, now: 100) == [0])
    }

    @Test func changingKindTakesTheNewDeadline() {
        var lists = DeadlineLists(timeouts: Self.timeouts)
        lists.arm(3, .idle, now: 0)
        lists.arm(3, .request, now: 5)
        #expect(lists.kind(of: 3) == .request)
        #expect(lists.nextDeadline == 25)
        let popped = lists.popExpired(now: 25)
        #expect(popped?.id == 3 && popped?.kind == .request)
        #expect(lists.nextDeadline == nil)
    }

    @Test(arguments: [1, 2, 50, 300])
    func randomOperationsMatchAReferenceModel(seed: UInt64) {
        var lists = DeadlineLists(timeouts: Self.timeouts)
        var model: [Int32: (kind: TimerKind, deadline: UInt64)] = [:]
        var generator = SplitMix(seed: seed)
        var now: UInt64 = 0
        for _ in 0..<2000 {
            now += generator.next() % 3
            let id = Int32(generator.next() % 40)
            switch generator.next() % 4 {
            case 0, 1:
                let kind = TimerKind.allCases[Int(generator.next() % UInt64(TimerKind.allCases.count))]
                lists.arm(id, kind, now: now)
                model[id] = (kind, now + Self.timeouts[kind.rawValue])
            case 2:
                lists.disarm(id)
                model[id] = nil
            default:
                while let (expired, kind) = lists.popExpired(now: now) {
                    #expect(model[expired]?.kind == kind)
                    #expect((model[expired]?.deadline ?? .max) <= now)
                    model[expired] = nil
                }
                #expect(!model.values.contains { $0.deadline <= now })
            }
            #expect(lists.nextDeadline == model.values.map(\.deadline).min())
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
