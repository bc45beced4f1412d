import BerthAdmission
import BerthModel
import BerthScheduling
import Foundation

// Micro-benchmarks for `make bench-*`. Each reports the median of many timed batches, and a
// reference measured in the same run, as a ratio, so figures from different machines compare.

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// Median time of one call, in microseconds: `batches` batches of `perBatch` calls each.
func measure(batches: Int = 200, perBatch: Int = 200, _ body: () -> Void) -> Double {
    // Warm caches, allocator and CPU for half a second: a fixed number of calls was not enough,
    // the first measurement of a process came out ~8 µs slower whichever path it was.
    let clock = ContinuousClock()
    let warmUntil = clock.now + .milliseconds(500)
    while clock.now < warmUntil { for _ in 0..<perBatch { body() } }
    var samples: [Double] = []
    samples.reserveCapacity(batches)
    for _ in 0..<batches {
        let elapsed = clock.measure { for _ in 0..<perBatch { body() } }
        let (seconds, attoseconds) = elapsed.components
        samples.append((Double(seconds) * 1e6 + Double(attoseconds) / 1e12) / Double(perBatch))
    }
    return median(samples)
}

func benchMutate(root: URL) throws {
    let reviewURL = root.appendingPathComponent("Tests/Fixtures/admission/z2jh-gpu-notebook.review.json")
    let reviewBytes = Array(try Data(contentsOf: reviewURL))
    let review = try JSONParser.parse(reviewBytes)
    guard let pod = review["request"]?["object"] else { throw CLIFailure("the review fixture has no request.object") }
    let podBytes = JSONWriter.bytes(pod)
    let policy = MutationPolicy()
    let handler = AdmissionReviewHandler(policy: policy)

    var sink = 0
    let selection = policy.podSelection
    let reviewMicros = measure {
        sink &+= handler.handle(body: reviewBytes).body.count
    }
    let podMicros = measure {
        guard let tape = try? JSONTape(parsing: podBytes, selecting: selection),
            let mutation = try? policy.mutation(for: tape.root, namespace: "jhub")
        else { return }
        sink &+= mutation.patch.serialized().count
    }
    let reviewData = Data(reviewBytes)
    let foundationMicros = measure {
        if let object = try? JSONSerialization.jsonObject(with: reviewData) as? NSDictionary { sink &+= object.count }
    }
    print("bench-mutate: z2jh GPU notebook (pod \(podBytes.count) B, AdmissionReview \(reviewBytes.count) B), median of 200 batches x 200")
    print(String(format: "  classify + patch from the pod's raw JSON        %8.2f µs   (goal <= 20 µs)", podMicros))
    print(String(format: "  whole AdmissionReview in -> response bytes out  %8.2f µs", reviewMicros))
    print(String(format: "  reference: Foundation JSONSerialization parse   %8.2f µs   (decode only, no policy)", foundationMicros))
    print(String(format: "  ratio: Berth's whole review / Foundation's parse alone = %.2f", reviewMicros / foundationMicros))
    if sink == 42 { print("") }  // keeps the work observable to the optimiser
}

struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

let arguments = CommandLine.arguments.dropFirst()
let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
do {
    switch arguments.first {
    case "mutate": try benchMutate(root: root)
    case "schedule": benchSchedule()
    case "watch": try benchWatch(root: root)
    case "kube-memory": try benchKubeMemory(root: root, arguments: arguments.dropFirst())
    case "kube-memory-client": try kubeMemoryClient(arguments: arguments.dropFirst())
    case "profile-review":
        let bytes = Array(try Data(contentsOf: root.appendingPathComponent("Tests/Fixtures/admission/z2jh-gpu-notebook.review.json")))
        let handler = AdmissionReviewHandler(policy: MutationPolicy())
        // Optional count: `profile-review 2000` keeps a callgrind run short.
        let count = arguments.dropFirst().first.flatMap { Int($0) } ?? 50000
        var total = 0
        for _ in 0..<count { total &+= handler.handle(body: bytes).body.count }
        print(total)
    case "profile-validate":
        // Reading the review with nothing selected: the cost of strict validation alone.
        let bytes = Array(try Data(contentsOf: root.appendingPathComponent("Tests/Fixtures/admission/z2jh-gpu-notebook.review.json")))
        let count = arguments.dropFirst().first.flatMap { Int($0) } ?? 50000
        var total = 0
        for _ in 0..<count { total &+= (try JSONTape(parsing: bytes, selecting: .members([]))).root.isObject ? 1 : 0 }
        print(total)
    case "profile-mutate":
        // A fixed amount of work for `valgrind --tool=callgrind` (instruction counts, not time).
        let review = try JSONParser.parse(Array(try Data(contentsOf: root.appendingPathComponent("Tests/Fixtures/admission/z2jh-gpu-notebook.review.json"))))
        let podBytes = JSONWriter.bytes(review["request"]?["object"] ?? .null)
        let policy = MutationPolicy()
        let selection = policy.podSelection
        var total = 0
        for _ in 0..<50000 {
            if let tape = try? JSONTape(parsing: podBytes, selecting: selection), let m = try? policy.mutation(for: tape.root, namespace: "jhub") { total &+= m.patch.serialized().count }
        }
        print(total)
    default:
        FileHandle.standardError.write(Data("usage: berth-bench mutate|schedule|watch|kube-memory   (run from the repository root)\n".utf8))
        exit(64)
    }
} catch {
    FileHandle.standardError.write(Data("berth-bench: \(error)\n".utf8))
    exit(1)
}
