/// The event loop's timers: at most one deadline per connection (identified by its fd).
///
/// Every `TimerKind` has one constant duration, so deadlines of one kind are armed in
/// non-decreasing order and an intrusive FIFO list per kind is already sorted: arming, re-arming
/// (after every request) and cancelling are O(1), and the nearest deadline is the minimum of the
/// list heads. That is a min-heap specialised to constant timeouts, with no garbage entries.
/// Pure value type over plain numbers (time is passed in), tested without sockets or clocks.
struct DeadlineLists {
    private struct Slot {
        var kind: Int8 = -1
        var deadline: UInt64 = 0
        var previous: Int32 = -1
        var next: Int32 = -1
    }

    private let timeouts: [UInt64]
    private var heads: [Int32]
    private var tails: [Int32]
    private var slots: [Slot] = []

    /// `timeouts[kind.rawValue]` is the duration of each kind, in nanoseconds.
    init(timeouts: [UInt64]) {
        precondition(timeouts.count == TimerKind.allCases.count)
        self.timeouts = timeouts
        heads = Array(repeating: -1, count: timeouts.count)
        tails = Array(repeating: -1, count: timeouts.count)
    }

    func kind(of id: Int32) -> TimerKind? {
        guard id >= 0, Int(id) < slots.count else { return nil }
        return TimerKind(rawValue: Int(slots[Int(id)].kind))
    }

    func deadline(of id: Int32) -> UInt64? {
        kind(of: id) == nil ? nil : slots[Int(id)].deadline
    }

    /// (Re)arms `id` for `kind`, due at `now` + that kind's timeout. `now` must not go backwards.
    mutating func arm(_ id: Int32, _ kind: TimerKind, now: UInt64) {
        precondition(id >= 0)
        disarm(id)
        if Int(id) >= slots.count {
            slots.append(contentsOf: repeatElement(Slot(), count: Int(id) + 1 - slots.count))
        }
        let tail = tails[kind.rawValue]
        slots[Int(id)] = Slot(kind: Int8(kind.rawValue), deadline: now &+ timeouts[kind.rawValue], previous: tail, next: -1)
        if tail >= 0 {
            slots[Int(tail)].next = id
        } else {
            heads[kind.rawValue] = id
        }
        tails[kind.rawValue] = id
    }

    mutating func disarm(_ id: Int32) {
        guard let kind = kind(of: id) else { return }
        let slot = slots[Int(id)]
        if slot.previous >= 0 { slots[Int(slot.previous)].next = slot.next } else { heads[kind.rawValue] = slot.next }
        if slot.next >= 0 { slots[Int(slot.next)].previous = slot.previous } else { tails[kind.rawValue] = slot.previous }
        slots[Int(id)] = Slot()
    }

    /// The connection armed longest ago for `kind` (the head of its list), if any.
    func oldest(_ kind: TimerKind) -> Int32? {
        let head = heads[kind.rawValue]
        return head >= 0 ? head : nil
    }

    /// The earliest deadline armed, if any.
    var nextDeadline: UInt64? {
        var nearest: UInt64?
        for head in heads where head >= 0 {
            let deadline = slots[Int(head)].deadline
            if nearest.map({ deadline < $0 }) ?? true { nearest = deadline }
        }
        return nearest
    }

    /// Removes and returns one expired timer (deadline <= now), or nil when none is due.
    mutating func popExpired(now: UInt64) -> (id: Int32, kind: TimerKind)? {
        for kind in TimerKind.allCases {
            let head = heads[kind.rawValue]
            if head >= 0, slots[Int(head)].deadline <= now {
                disarm(head)
                return (head, kind)
            }
        }
        return nil
    }
}
