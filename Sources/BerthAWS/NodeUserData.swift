import BerthModel
import Foundation

/// The EKS cluster a node joins.
public struct EKSCluster: Sendable, Equatable, Hashable {
    public var name: String
    public var apiServerEndpoint: String
    /// The cluster CA, base64 of the PEM (as `aws eks describe-cluster` prints it).
    public var certificateAuthority: String
    /// The service CIDR (AL2023's nodeadm needs it to find the cluster DNS).
    public var serviceCIDR: String

    public init(name: String, apiServerEndpoint: String, certificateAuthority: String, serviceCIDR: String = "10.100.0.0/16") {
        self.name = name
        self.apiServerEndpoint = apiServerEndpoint
        self.certificateAuthority = certificateAuthority
        self.serviceCIDR = serviceCIDR
    }
}

/// User data that joins an EKS cluster with the node's labels and taints set by the kubelet at
/// registration, so no pod is scheduled onto the node before its taints exist.
public enum NodeUserData {
    public enum Format: String, Sendable, Hashable {
        /// Amazon Linux 2023: a `nodeadm` NodeConfig in a MIME multipart document.
        case al2023
        /// Amazon Linux 2: `/etc/eks/bootstrap.sh`.
        case al2
        /// Bottlerocket: TOML settings.
        case bottlerocket
    }

    /// `kubelet` (a node class's maxPods and reservations) goes into AL2023's NodeConfig
    /// `kubelet.config` or Bottlerocket's `settings.kubernetes`; `extra` (a node class's own user
    /// data) becomes another MIME part before Berth's (AL2023: a NodeConfig nodeadm merges, or a
    /// script) or TOML after Berth's (Bottlerocket).
    public static func render(_ format: Format, cluster: EKSCluster, labels: [String: String], taints: [Taint],
                              kubelet: NodeClass.Kubelet = NodeClass.Kubelet(), extra: String? = nil) -> String {
        let flags = kubeletFlags(labels: labels, taints: taints)
        switch format {
        case .bottlerocket:
            return bottlerocket(cluster: cluster, labels: labels, taints: taints, kubelet: kubelet, extra: extra)
        case .al2023:
            var lines = [
                "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"",
                "",
            ]
            if let extra, !extra.isEmpty {
                let type = extra.hasPrefix("#!") ? "text/x-shellscript; charset=\"us-ascii\"" : "application/node.eks.aws"
                lines += ["--BOUNDARY", "Content-Type: \(type)", "", extra.hasSuffix("\n") ? String(extra.dropLast()) : extra, ""]
            }
            lines += [
                "--BOUNDARY",
                "Content-Type: application/node.eks.aws",
                "",
                "---",
                "apiVersion: node.eks.aws/v1alpha1",
                "kind: NodeConfig",
                "spec:",
                "  cluster:",
                "    name: \(yamlString(cluster.name))",
                "    apiServerEndpoint: \(yamlString(cluster.apiServerEndpoint))",
                "    certificateAuthority: \(yamlString(cluster.certificateAuthority))",
                "    cidr: \(yamlString(cluster.serviceCIDR))",
            ]
            if !flags.isEmpty || !kubelet.isEmpty {
                lines.append("  kubelet:")
                if !kubelet.isEmpty {
                    lines.append("    config:")
                    if let maxPods = kubelet.maxPods { lines.append("      maxPods: \(maxPods)") }
                    for (key, map) in [("systemReserved", kubelet.systemReserved), ("kubeReserved", kubelet.kubeReserved), ("evictionHard", kubelet.evictionHard)]
                    where !map.isEmpty {
                        lines.append("      \(key):")
                        lines += map.keys.sorted().map { "        \(yamlString($0)): \(yamlString(map[$0]!))" }
                    }
                }
                if !flags.isEmpty { lines += ["    flags:"] + flags.map { "      - \(yamlString($0))" } }
            }
            lines += ["", "--BOUNDARY--", ""]
            return lines.joined(separator: "\n")
        case .al2:
            var command = "/etc/eks/bootstrap.sh \(shellQuote(cluster.name)) --apiserver-endpoint \(shellQuote(cluster.apiServerEndpoint))"
                + " --b64-cluster-ca \(shellQuote(cluster.certificateAuthority))"
            if !flags.isEmpty { command += " --kubelet-extra-args \(shellQuote(flags.joined(separator: " ")))" }
            return "#!/bin/bash\nset -o errexit\n\(command)\n"
        }
    }

    /// Bottlerocket's settings: the cluster, its DNS IP, the labels and taints the kubelet registers
    /// with, the kubelet settings; `extra` appended (it must not repeat these tables).
    static func bottlerocket(cluster: EKSCluster, labels: [String: String], taints: [Taint], kubelet: NodeClass.Kubelet, extra: String?) -> String {
        var lines = [
            "[settings.kubernetes]",
            "cluster-name = \(yamlString(cluster.name))",
            "api-server = \(yamlString(cluster.apiServerEndpoint))",
            "cluster-certificate = \(yamlString(cluster.certificateAuthority))",
        ]
        if let dns = EKSClusterFacts.dnsIP(serviceCIDR: cluster.serviceCIDR) { lines.append("cluster-dns-ip = \(yamlString(dns))") }
        if let maxPods = kubelet.maxPods { lines.append("max-pods = \(maxPods)") }
        let allowed = labels.keys.filter(kubeletMaySet).sorted()
        if !allowed.isEmpty {
            lines += ["", "[settings.kubernetes.node-labels]"] + allowed.map { "\(yamlString($0)) = \(yamlString(labels[$0]!))" }
        }
        if !taints.isEmpty {
            var byKey: [String: [String]] = [:]
            for taint in taints { byKey[taint.key, default: []].append("\(taint.value):\(taint.effect)") }
            lines += ["", "[settings.kubernetes.node-taints]"]
                + byKey.keys.sorted().map { "\(yamlString($0)) = [" + byKey[$0]!.map(yamlString).joined(separator: ", ") + "]" }
        }
        for (table, map) in [("system-reserved", kubelet.systemReserved), ("kube-reserved", kubelet.kubeReserved), ("eviction-hard", kubelet.evictionHard)]
        where !map.isEmpty {
            lines += ["", "[settings.kubernetes.\(table)]"] + map.keys.sorted().map { "\(yamlString($0)) = \(yamlString(map[$0]!))" }
        }
        if let extra, !extra.isEmpty { lines += ["", extra.hasSuffix("\n") ? String(extra.dropLast()) : extra] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `--node-labels=k=v,...` (sorted) and `--register-with-taints=k=v:Effect,...`. Labels in the
    /// kubernetes.io / k8s.io namespaces that the kubelet may not set itself (NodeRestriction) are
    /// left out: the kubelet refuses to start with them, and sets the well-known ones on its own.
    public static func kubeletFlags(labels: [String: String], taints: [Taint]) -> [String] {
        var flags: [String] = []
        let allowed = labels.keys.filter(kubeletMaySet).sorted()
        if !allowed.isEmpty { flags.append("--node-labels=" + allowed.map { "\($0)=\(labels[$0]!)" }.joined(separator: ",")) }
        if !taints.isEmpty { flags.append("--register-with-taints=" + taints.map(\.description).joined(separator: ",")) }
        return flags
    }

    static func kubeletMaySet(_ key: String) -> Bool {
        guard let slash = key.firstIndex(of: "/") else { return true }
        let domain = key[..<slash]
        let restricted = domain == "kubernetes.io" || domain.hasSuffix(".kubernetes.io") || domain == "k8s.io" || domain.hasSuffix(".k8s.io")
        guard restricted else { return true }
        let allowedKeys: Set<String> = [
            "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "node.kubernetes.io/instance-type",
            "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
        ]
        return allowedKeys.contains(key) || domain == "kubelet.kubernetes.io" || domain == "node.kubernetes.io"
            || domain.hasSuffix(".kubelet.kubernetes.io") || domain.hasSuffix(".node.kubernetes.io")
    }

    /// A double-quoted YAML scalar (safe whatever the text holds): a JSON string is one.
    static func yamlString(_ text: String) -> String { JSONWriter.string(.string(text)) }

    static func shellQuote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
