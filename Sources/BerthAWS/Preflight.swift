import BerthModel
import Foundation

/// `berth check --cloud aws`: read-only checks of everything a launch needs, one line each with a
/// verdict. FAIL means a launch would fail (or Berth would not start); WARN means it works, worse.
public enum Preflight {
    public enum Verdict: String, Sendable {
        case ok = "OK"
        case warn = "WARN"
        case fail = "FAIL"
    }

    public struct Line: Sendable, Equatable {
        public var check: String
        public var verdict: Verdict
        public var detail: String

        public init(check: String, verdict: Verdict, detail: String) {
            self.check = check
            self.verdict = verdict
            self.detail = detail
        }
    }

    /// Runs every check against `cloud` (its configuration's region, node classes, pools, queue).
    /// `credentials` names the credential source found.
    public static func run(cloud: EC2Cloud, credentials: String, iam: IAMAPI? = nil) async -> [Line] {
        let configuration = cloud.configuration
        var lines = [
            Line(check: "credentials", verdict: .ok, detail: credentials),
            Line(check: "region", verdict: .ok, detail: configuration.region),
        ]
        let catalog: EC2Catalog
        do {
            catalog = try await cloud.catalog()
            let zones = Set(catalog.entries.flatMap { $0.type.offerings.map(\.zone) }).sorted()
            lines.append(Line(check: "EC2 instance types", verdict: catalog.schedulable.types.isEmpty ? .fail : .ok,
                              detail: "\(catalog.entries.count) GPU types, \(catalog.schedulable.types.count) launchable, zones \(zones.joined(separator: ", "))"))
            lines.append(Line(check: "prices", verdict: catalog.priceWarning == nil ? .ok : .warn, detail: catalog.priceWarning ?? catalog.pricesFrom))
        } catch {
            lines.append(Line(check: "EC2 instance types", verdict: .fail, detail: "\(error)"))
        }

        let pools = configuration.poolNodeClasses
        if configuration.launchTemplate == nil && pools.isEmpty {
            lines.append(Line(check: "launch", verdict: .fail, detail: "no node class and no launchTemplate: nothing can be launched"))
        } else if configuration.launchTemplate != nil {
            lines.append(Line(check: "launch template", verdict: .ok, detail: "for pools without a node class"))
        }
        if !configuration.nodeClasses.isEmpty, let resolver = cloud.resolver {
            let settings = configuration.eksCluster ?? EKSClusterSettings(name: "berth")
            do {
                let cluster = try await resolver.cluster(settings)
                lines.append(Line(check: "EKS cluster", verdict: .ok,
                                  detail: "\(cluster.name): Kubernetes \(cluster.version), service CIDR \(cluster.serviceCIDR) (DNS \(cluster.dnsIP ?? "?")), \(cluster.endpoint)"))
                for name in configuration.nodeClasses.keys.sorted() {
                    let nodeClass = configuration.nodeClasses[name]!
                    let users = pools.filter { $0.value == name }.keys.sorted()
                    let prefix = "node class \(name)\(users.isEmpty ? " (no pool)" : "")"
                    do {
                        let subnets = try await resolver.subnets(nodeClass, cluster: cluster.name)
                        lines.append(Line(check: "\(prefix): subnets", verdict: .ok,
                                          detail: subnets.keys.sorted().map { "\($0) \(subnets[$0]!)" }.joined(separator: ", ")))
                    } catch {
                        lines.append(Line(check: "\(prefix): subnets", verdict: .fail, detail: "\(error)"))
                    }
                    do {
                        let groups = try await resolver.securityGroups(nodeClass, cluster: cluster.name)
                        lines.append(Line(check: "\(prefix): security groups", verdict: .ok, detail: groups.joined(separator: ", ")))
                    } catch {
                        lines.append(Line(check: "\(prefix): security groups", verdict: .fail, detail: "\(error)"))
                    }
                    if let eks = resolver.eks {
                        lines.append(await nodeRole(nodeClass, cluster: cluster.name, iam: iam, eks: eks, check: "\(prefix): node role"))
                    }
                    do {
                        let images = try await resolver.images(nodeClass, version: cluster.version)
                        let gpu = ["amd64", "arm64"].compactMap { arch in images[.init(arch: arch, accelerated: true)].map { "\(arch) \($0)" } }
                        let verdict: Verdict = gpu.isEmpty ? .fail : gpu.count < 2 ? .warn : .ok
                        let missing = verdict == .warn ? " (no image for the other architecture: its types are not launched)" : ""
                        lines.append(Line(check: "\(prefix): AMIs (GPU)", verdict: verdict,
                                          detail: gpu.isEmpty ? "no image for Kubernetes \(cluster.version)" : gpu.joined(separator: ", ") + missing))
                    } catch {
                        lines.append(Line(check: "\(prefix): AMIs (GPU)", verdict: .fail, detail: "\(error)"))
                    }
                }
            } catch {
                lines.append(Line(check: "EKS cluster", verdict: .fail, detail: "\(error)"))
            }
        }
        if let queue = cloud.interruptions {
            do {
                lines.append(Line(check: "interruption queue", verdict: .ok, detail: try await queue.queueURL()))
            } catch {
                lines.append(Line(check: "interruption queue", verdict: .fail, detail: "\(error)"))
            }
        } else {
            lines.append(Line(check: "interruption queue", verdict: .warn, detail: "not configured: spot interruptions are noticed only when the instance is gone"))
        }
        return lines
    }

    /// The node class's instance profile has a role, and that role an EKS access entry (without
    /// one — or an aws-auth mapping — the node never registers).
    public static func nodeRole(_ nodeClass: NodeClass, cluster: String, iam: IAMAPI?, eks: EKSAPI, check: String) async -> Line {
        let role: String
        if let given = nodeClass.role {
            role = given  // Berth makes its instance profile at start
        } else {
            guard let profile = nodeClass.instanceProfile else {
                return Line(check: check, verdict: .fail, detail: "no instanceProfile or role: nodes would have no role to join the cluster with")
            }
            guard let iam else { return Line(check: check, verdict: .warn, detail: "instance profile \(profile): not checked (no IAM client)") }
            let roles: [String]
            do {
                roles = try await iam.instanceProfileRoles(profile)
            } catch {
                return Line(check: check, verdict: .fail, detail: "instance profile \(profile): \(error)")
            }
            guard let first = roles.first else { return Line(check: check, verdict: .fail, detail: "instance profile \(profile) has no role") }
            role = first
        }
        let entries: [String]
        do {
            entries = try await eks.listAccessEntries(cluster: cluster)
        } catch {
            return Line(check: check, verdict: .warn,
                        detail: "\(role): access entries could not be listed (\(error)); with the aws-auth ConfigMap, map this role to system:nodes")
        }
        // Access entries name the role without its IAM path; compare by account and name.
        func name(_ arn: String) -> Substring { arn.split(separator: "/").last ?? Substring(arn) }
        func account(_ arn: String) -> Substring? {
            let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
            return arn.hasPrefix("arn:") && parts.count > 4 ? parts[4] : nil
        }
        // A role given by name matches any account's entry of that name.
        guard entries.contains(where: { name($0) == name(role) && (account(role) == nil || account($0) == account(role)) }) else {
            return Line(check: check, verdict: .fail, detail: "\(role) has no EKS access entry: aws eks create-access-entry --cluster-name \(cluster) --principal-arn \(role) --type EC2_LINUX")
        }
        return Line(check: check, verdict: .ok, detail: "\(role) has an EKS access entry")
    }

    /// The NVIDIA device plugin among the cluster's DaemonSets (its own chart's or the GPU
    /// operator's): without it a GPU node never advertises `nvidia.com/gpu`. It must tolerate the
    /// pools' taints, or it never runs on Berth's nodes.
    public static func devicePlugin(daemonSets: [JSON], taints: [Taint]) -> Line {
        let check = "NVIDIA device plugin"
        let plugins = daemonSets.filter { daemonSet in
            let name = daemonSet["metadata"]?["name"]?.stringValue ?? ""
            let images = daemonSet["spec"]?["template"]?["spec"]?["containers"]?.arrayValue?.compactMap { $0["image"]?.stringValue } ?? []
            return name.contains("nvidia-device-plugin") || images.contains { $0.contains("k8s-device-plugin") }
        }
        guard !plugins.isEmpty else {
            return Line(check: check, verdict: .fail,
                        detail: "no DaemonSet runs it: GPU nodes would register without nvidia.com/gpu (install the nvidia-device-plugin chart or the GPU operator)")
        }
        var lines: [String] = []
        var verdict = Verdict.ok
        for plugin in plugins {
            let place = "\(plugin["metadata"]?["namespace"]?.stringValue ?? "")/\(plugin["metadata"]?["name"]?.stringValue ?? "")"
            let tolerations = plugin["spec"]?["template"]?["spec"]?["tolerations"]?.arrayValue?.map { Toleration(json: $0) } ?? []
            let untolerated = taints.filter { taint in !tolerations.contains { $0.tolerates(taint) } }
            if untolerated.isEmpty {
                lines.append(place)
            } else {
                verdict = .fail
                lines.append("\(place) does not tolerate \(untolerated.map(\.description).joined(separator: ", ")): it would not run on Berth's nodes")
            }
        }
        if verdict == .fail && lines.contains(where: { !$0.contains("does not tolerate") }) { verdict = .ok }
        return Line(check: check, verdict: verdict, detail: lines.joined(separator: "; "))
    }
}
