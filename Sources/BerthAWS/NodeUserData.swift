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
    }

    public static func render(_ format: Format, cluster: EKSCluster, labels: [String: String], taints: [Taint]) -> String {
        let flags = kubeletFlags(labels: labels, taints: taints)
        switch format {
        case .al2023:
            var lines = [
                "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"",
                "",
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
            if !flags.isEmpty {
                lines += ["  kubelet:", "    flags:"] + flags.map { "      - \(yamlString($0))" }
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
