import BerthAdmission
import BerthController
import CBerthLinux
import BerthKube
import BerthKubeSim
import BerthModel
import Dispatch
import Foundation
import Glibc
import Synchronization

/// `berth-bench kube-memory [--pods N] [--nodes N] [--whole-objects]`: the memory the
/// provisioner's caches take at scale. This process runs the embedded apiserver (the fake, over
/// TLS) holding N realistic pods and nodes (`RealisticObjects`: 6–7 KB pods with managedFields,
/// env, container statuses); a *separate* process (`kube-memory-client`) then runs the
/// provisioner's cluster port against it — `KubeCluster`'s pod and node informers, synced, and one
/// snapshot taken, as the provisioner's first round does — and reports its resident memory before
/// and after. `--whole-objects` runs plain informers caching whole objects instead (Berth before
/// the projection), for comparison.
func benchKubeMemory(root: URL, arguments: ArraySlice<String>) throws {
    func value(_ flag: String, _ fallback: Int) -> Int {
        guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.endIndex, let number = Int(arguments[index + 1]) else { return fallback }
        return number
    }
    let podCount = value("--pods", 50_000), nodeCount = value("--nodes", 2_000)
    let whole = arguments.contains("--whole-objects")
    let certs = root.appendingPathComponent("certs")
    var options = FakeKubeAPIServer.Options()
    options.tokens = ["bench-token": .allowed]
    options.historyLimit = 1_000
    let server = try FakeKubeAPIServer(certificateFile: certs.appendingPathComponent("tls.crt").path,
                                       privateKeyFile: certs.appendingPathComponent("tls.key").path, options: options)
    defer { server.stop() }
    var sampleBytes = 0, samples = 0
    for index in 0..<podCount {
        let pod = RealisticObjects.pod(index, nodes: nodeCount)
        if index % 97 == 0 { sampleBytes += JSONWriter.bytes(pod).count; samples += 1 }
        server.write(.pods, pod)
    }
    var nodeBytes = 0
    for index in 0..<nodeCount {
        let node = RealisticObjects.node(index)
        if index == 0 { nodeBytes = JSONWriter.bytes(node).count }
        server.write(.nodes, node)
    }
    let kubeconfig = NSTemporaryDirectory() + "berth-bench-kube-memory-\(getpid()).kubeconfig"
    try """
    apiVersion: v1
    kind: Config
    clusters: [{name: bench, cluster: {server: "https://localhost:\(server.port)", certificate-authority: \(certs.appendingPathComponent("ca.crt").path)}}]
    users: [{name: bench, user: {token: bench-token}}]
    contexts: [{name: bench, context: {cluster: bench, user: bench}}]
    current-context: bench
    """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
    print("bench-kube-memory: \(podCount) pods (\(sampleBytes / max(samples, 1)) B of JSON each on average, managedFields, env, statuses) and \(nodeCount) nodes (\(nodeBytes) B each) in the embedded apiserver")
    let samplePod = JSONWriter.bytes(RealisticObjects.pod(1, nodes: nodeCount))
    let projected = (try? JSONTape(parsing: samplePod, selecting: KubeCluster.podSelection).root.json).map { JSONWriter.bytes($0).count } ?? 0
    let sampleNode = JSONWriter.bytes(RealisticObjects.node(1))
    let projectedNode = (try? JSONTape(parsing: sampleNode, selecting: KubeCluster.nodeSelection).root.json).map { JSONWriter.bytes($0).count } ?? 0
    print("  the projection the provisioner caches: \(projected) B of a pod's \(samplePod.count), \(projectedNode) B of a node's \(sampleNode.count)")
    print("  provisioner process: \(whole ? "plain informers caching whole objects (before)" : "KubeCluster's informers caching projections")")

    fflush(nil)  // our lines before the child's
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    if !CommandLine.arguments[0].contains("/") { child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }
    child.arguments = ["kube-memory-client", kubeconfig, String(podCount), String(nodeCount)] + (whole ? ["--whole-objects"] : [])
    try child.run()
    child.waitUntilExit()
    guard child.terminationStatus == 0 else { throw CLIFailure("the provisioner process exited with status \(child.terminationStatus)") }
}

/// The provisioner side of `kube-memory`, in its own process (see above).
func kubeMemoryClient(arguments: ArraySlice<String>) throws {
    let values = Array(arguments)
    guard values.count >= 3, let pods = Int(values[1]), let nodes = Int(values[2]) else {
        throw CLIFailure("usage: berth-bench kube-memory-client KUBECONFIG PODS NODES [--whole-objects]")
    }
    let whole = values.contains("--whole-objects")
    var configuration = try KubeConfigLoader.kubeconfig(explicitPath: values[0])
    configuration.qps = 0  // the first list is 100 pages: not the limiter's time being measured
    configuration.timeout = .seconds(120)
    let client = try KubeClient(configuration)
    let before = residentBytes()
    let clock = ContinuousClock()
    let start = clock.now
    var counted = (pods: 0, nodes: 0)
    var stopAll: () -> Void = {}
    if whole {
        let podInformer = Informer(client: client, resource: .pods)
        let nodeInformer = Informer(client: client, resource: .nodes)
        podInformer.start()
        nodeInformer.start()
        while !(podInformer.hasSynced && nodeInformer.hasSynced) { Thread.sleep(forTimeInterval: 0.1) }
        counted = (podInformer.count, nodeInformer.count)
        stopAll = { podInformer.stop(); nodeInformer.stop() }
    } else {
        let cluster = KubeCluster(client: client, identity: "bench")
        cluster.start()
        while !cluster.hasSynced { Thread.sleep(forTimeInterval: 0.1) }
        berth_malloc_trim()
        let informersOnly = residentBytes()
        print("  informers synced: RSS \(informersOnly / 1024 / 1024) MiB (\((informersOnly - before) / (pods + nodes)) B per object before the provisioner's snapshot cache)")
        // One snapshot, as the provisioner's first round takes: its per-pod cache is part of the cost.
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<(Int, Int)>((0, 0))
        Task.detached {
            if let snapshot = try? await cluster.snapshot() { result.withLock { $0 = (snapshot.pods.count, snapshot.nodes.count) } }
            done.signal()
        }
        done.wait()
        counted = result.withLock { $0 }
        stopAll = { cluster.stop() }
    }
    let synced = clock.now - start
    berth_malloc_trim()  // what is resident, not what the allocator keeps for later
    let after = residentBytes()
    guard counted.pods == pods, counted.nodes == nodes else {
        throw CLIFailure("cached \(counted.pods) pods and \(counted.nodes) nodes, expected \(pods) and \(nodes)")
    }
    let growth = after - before
    print(String(format: "  synced %d pods and %d nodes in %.1f s", pods, nodes, Double(synced.components.seconds) + Double(synced.components.attoseconds) / 1e18))
    print("  RSS before the informers \(before / 1024 / 1024) MiB, after \(after / 1024 / 1024) MiB, peak while listing \(residentBytes(peak: true) / 1024 / 1024) MiB")
    print("  => \(growth / (pods + nodes)) bytes resident per cached object, \(after / 1024 / 1024) MiB RSS in all (goal: <= 3 KB per pod, < 256 MiB)")
    stopAll()
}

/// VmRSS (or with `peak`, VmHWM) from /proc/self/status, in bytes.
func residentBytes(peak: Bool = false) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(peak ? "VmHWM:" : "VmRSS:") {
        let digits = line.split(separator: " ").compactMap { Int($0) }
        return (digits.first ?? 0) * 1024
    }
    return 0
}
