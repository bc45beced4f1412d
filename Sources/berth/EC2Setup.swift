import BerthAWS
import BerthModel
import BerthScheduling
import Foundation

/// What `berth serve` and `berth catalog` share on AWS: the EC2 cloud on the credential chain and
/// its catalog, read at once, so a wrong region or credentials fail here in one line with AWS's
/// code and message (never a secret: AWSError carries none).
enum EC2Setup {
    /// The EC2 cloud's settings from `provisioner` (its `aws` section, node classes, pools) and the
    /// environment's endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`).
    static func configuration(_ config: ProvisionerConfig, command: String, region override: String? = nil) throws
        -> (EC2CloudConfiguration, AWSCredentialChain) {
        let chain = AWSCredentialChain(environment: ProcessInfo.processInfo.environment)
        var configuration: EC2CloudConfiguration
        do {
            let region = override ?? (try? chain.region()) ?? nil  // AWS_REGION, AWS_DEFAULT_REGION, then the profile's
            configuration = try EC2CloudConfiguration(config: config.aws, path: "provisioner.aws", defaultRegion: region)
            if let override { configuration.region = override }
            if configuration.endpoint == nil { configuration.endpoint = try chain.endpointOverride(service: "EC2") }
            if configuration.priceSource == .priceList(endpoint: nil) {
                configuration.priceSource = .priceList(endpoint: try chain.endpointOverride(service: "PRICING"))
            }
            configuration.nodeClasses = try NodeClass.parseAll(config.nodeClasses, path: "provisioner.nodeClasses")
            configuration.poolNodeClasses = Dictionary(uniqueKeysWithValues: config.pools.compactMap { pool in pool.nodeClass.map { (pool.name, $0) } })
            if !configuration.nodeClasses.isEmpty {
                if configuration.eksCluster == nil { configuration.eksCluster = EKSClusterSettings(name: config.clusterName) }
                configuration.ssmEndpoint = try chain.endpointOverride(service: "SSM")
                configuration.eksEndpoint = try chain.endpointOverride(service: "EKS")
                configuration.iamEndpoint = try chain.endpointOverride(service: "IAM")
            }
            if configuration.interruptionQueue != nil { configuration.sqsEndpoint = try chain.endpointOverride(service: "SQS") }
        } catch let error as ConfigError {
            throw CLIError(message: "config: \(error)")
        } catch {
            throw CLIError(message: "\(command): \(error)".replacingOccurrences(of: "\n", with: " "))
        }
        return (configuration, chain)
    }

    static func start(_ configuration: EC2CloudConfiguration, chain: AWSCredentialChain, command: String) throws -> (EC2Cloud, EC2Catalog) {
        do {
            let cloud = try EC2Cloud(configuration: configuration, credentials: try chain.resolve())
            let catalog = try blocking { () async throws(AWSError) -> EC2Catalog in try await cloud.catalog() }
            return (cloud, catalog)
        } catch {
            throw CLIError(message: "\(command): \(error)".replacingOccurrences(of: "\n", with: " "))
        }
    }
}
