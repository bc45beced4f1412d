import BerthAWS

/// What `berth serve` and `berth catalog` share on AWS: the EC2 cloud on the credential chain and
/// its catalog, read at once, so a wrong region or credentials fail here in one line with AWS's
/// code and message (never a secret: AWSError carries none).
enum EC2Setup {
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
