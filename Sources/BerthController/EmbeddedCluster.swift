import BerthAdmission
import BerthKube
import BerthKubeSim
import BerthModel
import BerthNet
import BerthProvisioner
import BerthScheduling
import Foundation
import Logging
import Synchronization

/// `berth serve --simulated`: a whole cluster in the process — the embedded API server (the
/// faithful test double of kube-apiserver, over TLS), the simulated cloud, and the simulated
/// kubelets, device plugin and scheduler — so that the webhook and the provisioning loop run for
/// real on one machine. Pods created through the embedded API server pass through Berth's
/// mutation policy first, as a real apiserver would call the webhook.
public final class EmbeddedCluster: Sendable {
    public struct Options: Sendable {
        public var certificateFile: String
        public var privateKeyFile: String
        /// The CA that signed the certificate (for the kubeconfig written out).
        public var caFile: String?
        public var port = 6443
        /// What the simulated cloud sells.
        public var catalog: InstanceCatalog = .builtIn()
        public var bootDelay: ClosedRange<Duration> = .seconds(40) ... .seconds(80)
        public var gpuDelay: ClosedRange<Duration>? = .seconds(10) ... .seconds(30)
        /// Where to write a kubeconfig for the embedded API server (for kubectl); nil: none.
        public var kubeconfigPath: String?
        public init(certificateFile: String, privateKeyFile: String) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }

    public let server: FakeKubeAPIServer
    public let cloud: SimulatedCloud<ContinuousClock>
    public let token: String
    private let nodes: SimulatedNodes<ContinuousClock>
    private let loop = Mutex<Task<Void, Never>?>(nil)
    private let options: Options

    public init(options: Options, webhook: WebhookConfig, logger: Logger) throws {
        self.options = options
        token = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        var serverOptions = FakeKubeAPIServer.Options()
        serverOptions.tokens = [token: .allowed]
        serverOptions.port = options.port
        let mutator = ManifestMutator(policy: MutationPolicy(config: webhook))
        let admissionLogger = logger
        serverOptions.admission = { resource, object in
            guard resource == .pods else { return object }
            let result = try mutator.mutate(object)
            let key = "\(object["metadata"]?["namespace"]?.stringValue ?? "default")/\(object["metadata"]?["name"]?.stringValue ?? "?")"
            admissionLogger.info("webhook: pod \(key) mutated", metadata: [
                "operations": "\(result.patch.operations.count)", "class": "\(result.pods.first?.mutation.podClass?.rawValue ?? "none")",
                "mutations": "\(result.pods.first?.mutation.kinds.map(\.rawValue).joined(separator: ",") ?? "")",
            ])
            return result.mutated
        }
        server = try FakeKubeAPIServer(certificateFile: options.certificateFile, privateKeyFile: options.privateKeyFile, options: serverOptions)
        cloud = SimulatedCloud(
            configuration: SimulatedCloudConfiguration(
                catalog: options.catalog, seed: UInt64.random(in: 1 ... .max), bootDelay: options.bootDelay, gpuRegistrationDelay: options.gpuDelay, epoch: Date()),
            clock: ContinuousClock(), logger: logger)
        nodes = SimulatedNodes(server: server, cloud: cloud, logger: logger)
        if let path = options.kubeconfigPath { try writeKubeconfig(to: path) }
    }

    /// A client configuration for the embedded API server.
    public func clientConfiguration() throws -> KubeClientConfiguration {
        guard let ca = FileManager.default.contents(atPath: options.caFile ?? options.certificateFile) else {
            throw KubeError.configuration(source: options.caFile ?? options.certificateFile, message: "cannot read the CA certificate")
        }
        return KubeClientConfiguration(host: "localhost", port: server.port, tls: TLSClientConfiguration(trustedCAPEM: Array(ca)), credentials: .bearerToken(token))
    }

    /// Kubelets and the scheduler act every `interval`.
    public func start(interval: Duration = .milliseconds(500)) {
        let nodes = self.nodes
        loop.withLock {
            $0 = Task.detached {
                while !Task.isCancelled {
                    await nodes.step()
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    public func stop() async {
        let task = loop.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
        server.stop()
    }

    private func writeKubeconfig(to path: String) throws {
        let ca = options.caFile ?? options.certificateFile
        let absoluteCA = ca.hasPrefix("/") ? ca : FileManager.default.currentDirectoryPath + "/" + ca
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: berth-simulated
              cluster:
                server: https://localhost:\(server.port)
                certificate-authority: \(absoluteCA)
            users:
            - name: berth-simulated
              user:
                token: \(token)
            contexts:
            - name: berth-simulated
              context: {cluster: berth-simulated, user: berth-simulated}
            current-context: berth-simulated

            """
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw KubeError.configuration(source: path, message: "cannot write the simulated cluster's kubeconfig")
        }
    }
}

/// `berth serve --simulated --demo`: one data scientist's afternoon, compressed. Creates a GPU
/// notebook pod (through the embedded API server, so the webhook's mutation applies), waits until
/// it runs on the node Berth launched, keeps it for `runFor`, then deletes it — and Berth drains
/// and removes the node. The timeline is in the logs.
public struct NotebookDemo: Sendable {
    public var client: KubeClient
    public var runFor: Duration
    public var logger: Logger

    public init(client: KubeClient, runFor: Duration, logger: Logger) {
        self.client = client
        self.runFor = runFor
        self.logger = logger
    }

    public static func notebookPod(name: String, namespace: String) -> JSON {
        [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": [
                "name": .string(name), "namespace": .string(namespace),
                "labels": ["app": "jupyterhub", "component": "singleuser-server", "hub.jupyter.org/username": "alice"],
            ],
            "spec": [
                "containers": [[
                    "name": "notebook", "image": "quay.io/jupyter/pytorch-notebook:latest",
                    "resources": ["limits": ["nvidia.com/gpu": "1", "memory": "16G"], "requests": ["cpu": "2", "memory": "8G"]],
                ]],
            ],
        ]
    }

    public func run() async {
        let name = "jupyter-alice", namespace = "jhub"
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> String { String(format: "%.1fs", (clock.now - start).seconds) }
        do {
            // The hub's namespace, as on a real cluster (where a pod cannot be created in a namespace
            // that does not exist, and kubectl asks for the namespace when a pod is not found).
            if (try? client.get(.namespaces, name: namespace)) == nil {
                _ = try client.create(.namespaces, ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]])
            }
            _ = try client.create(.pods, namespace: namespace, Self.notebookPod(name: name, namespace: namespace))
            logger.info("demo: created GPU notebook \(namespace)/\(name)", metadata: ["t": "\(elapsed())"])
            var node = ""
            while !Task.isCancelled {
                let pod = try client.get(.pods, namespace: namespace, name: name)
                if pod["status"]?["phase"]?.stringValue == "Running", let bound = pod["spec"]?["nodeName"]?.stringValue {
                    node = bound
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            logger.info("demo: notebook running on \(node); the data scientist works for \(runFor)", metadata: ["t": "\(elapsed())"])
            try await Task.sleep(for: runFor)
            _ = try client.delete(.pods, namespace: namespace, name: name)
            logger.info("demo: notebook stopped; Berth removes \(node) once it has been empty for emptyAfter", metadata: ["t": "\(elapsed())"])
            while !Task.isCancelled {
                if (try? client.get(.nodes, name: node)) == nil { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            logger.info("demo: node \(node) is gone; nothing is billed any more. Ctrl-C stops Berth.", metadata: ["t": "\(elapsed())"])
        } catch is CancellationError {
            return
        } catch {
            logger.error("demo: \(error)")
        }
    }
}

