/// A binary min-heap of events by time; events at the same time come out in the order they were
/// pushed, so a run is reproducible.
struct EventQueue<Kind> {
    struct Entry {
        var time: Double
        var sequence: Int
        var kind: Kind

        func before(_ other: Entry) -> Bool { time < other.time || (time == other.time && sequence < other.sequence) }
    }

    private var heap: [Entry] = []
    private var sequence = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: Double? { heap.first?.time }

    mutating func push(_ kind: Kind, at time: Double) {
        sequence += 1
        heap.append(Entry(time: time, sequence: sequence, kind: kind))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].before(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].before(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].before(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
