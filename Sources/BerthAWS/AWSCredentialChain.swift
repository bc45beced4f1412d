import Foundation

/// Finds the credentials Berth runs with, in the order the AWS SDKs look (the first source that
/// is configured wins; a configured source that is broken is an error, not a fall-through):
/// 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
/// 2. web identity (IRSA): `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` → STS;
/// 3. EKS Pod Identity / ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+ `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
///    or `AWS_CONTAINER_AUTHORIZATION_TOKEN`), or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`;
/// 4. the shared files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, default `~/.aws/...`),
///    profile `AWS_PROFILE` (else `default`): keys, or `role_arn` + `web_identity_token_file`;
/// 5. IMDSv2, unless `AWS_EC2_METADATA_DISABLED=true` (`AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides).
/// The environment is a dictionary so the logic never reads the process's own.
public struct AWSCredentialChain: Sendable {
    public var environment: [String: String]
    public var files: AWSFileReader

    public init(environment: [String: String], files: AWSFileReader = .disk) {
        self.environment = environment
        self.files = files
    }

    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region`.
    public func region() throws(AWSError) -> String? {
        if let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") { return region }
        return try profileSettings()?.settings["region"]
    }

    /// A service's endpoint from the environment, as the SDKs read it: `AWS_ENDPOINT_URL_<SERVICE>`
    /// (`EC2`, `STS`), else `AWS_ENDPOINT_URL`; nil when neither is set.
    public func endpointOverride(service: String) throws(AWSError) -> AWSEndpoint? {
        for name in ["AWS_ENDPOINT_URL_\(service)", "AWS_ENDPOINT_URL"] {
            if let url = value(name) { return try AWSEndpoint(url: url, what: name) }
        }
        return nil
    }

    /// The STS endpoint: the environment's override, else the regional one.
    public func stsEndpoint(region: String?) throws(AWSError) -> AWSEndpoint {
        try endpointOverride(service: "STS") ?? .sts(region: region)
    }

    /// The first configured source, wrapped so temporary credentials are cached and refreshed.
    public func resolve(now: @escaping @Sendable () -> Date = { Date() }) throws(AWSError) -> RefreshingCredentials {
        RefreshingCredentials(try source(), now: now)
    }

    /// The first configured source, uncached.
    public func source() throws(AWSError) -> any AWSCredentialProvider {
        // 1. Environment.
        let key = value("AWS_ACCESS_KEY_ID"), secret = value("AWS_SECRET_ACCESS_KEY")
        if key != nil || secret != nil {
            guard let key else { throw .credentials(source: "environment", message: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not") }
            guard let secret else { throw .credentials(source: "environment", message: "AWS_ACCESS_KEY_ID \(key) is set but AWS_SECRET_ACCESS_KEY is not") }
            return StaticCredentials(name: "environment", credentials: AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
        }
        // 2. Web identity.
        let roleARN = value("AWS_ROLE_ARN"), tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE")
        if roleARN != nil || tokenFile != nil {
            guard let roleARN, let tokenFile else {
                throw .credentials(source: "environment", message: "web identity needs both AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE")
            }
            return try webIdentity(roleARN: roleARN, tokenFile: tokenFile, sessionName: value("AWS_ROLE_SESSION_NAME"))
        }
        // 3. Container credentials (EKS Pod Identity, ECS).
        if let full = value("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            let endpoint = try AWSEndpoint(url: full, what: "AWS_CONTAINER_CREDENTIALS_FULL_URI")
            guard endpoint.secure || ContainerCredentials.allowsPlainHTTP(endpoint) else {
                throw .credentials(source: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                   message: "plain http is allowed only for loopback and the EKS/ECS agent addresses, not \(endpoint.host)")
            }
            let authorization: ContainerCredentials.Authorization =
                if let file = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") { .tokenFile(file) }
                else if let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN") { .token(token) }
                else { .none }
            return ContainerCredentials(url: endpoint, authorization: authorization, files: files)
        }
        if let relative = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            return ContainerCredentials(url: AWSEndpoint(secure: false, host: "169.254.170.2", path: relative), authorization: .none, files: files)
        }
        // 4. Shared credentials and config files.
        if let profile = try profileSettings() {
            let settings = profile.settings
            if let key = settings["aws_access_key_id"] {
                guard let secret = settings["aws_secret_access_key"], !secret.isEmpty else {
                    throw .credentials(source: profile.where, message: "profile \(profile.name) has aws_access_key_id \(key) but no aws_secret_access_key")
                }
                return StaticCredentials(name: "profile \(profile.name) (\(profile.where))",
                                         credentials: AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: settings["aws_session_token"]))
            }
            if let roleARN = settings["role_arn"], let tokenFile = settings["web_identity_token_file"] {
                return try webIdentity(roleARN: roleARN, tokenFile: tokenFile, sessionName: settings["role_session_name"])
            }
            if value("AWS_PROFILE") != nil {
                throw .credentials(source: profile.where, message: "profile \(profile.name) has no aws_access_key_id nor role_arn with web_identity_token_file (other kinds of profile are not supported)")
            }
        }
        // 5. IMDSv2.
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" {
            throw .credentials(source: "chain", message: "no credentials: none in the environment, no web identity, no container credentials, no profile, and IMDS is disabled (AWS_EC2_METADATA_DISABLED)")
        }
        let imds = try value("AWS_EC2_METADATA_SERVICE_ENDPOINT").map { text throws(AWSError) in
            try AWSEndpoint(url: text, what: "AWS_EC2_METADATA_SERVICE_ENDPOINT")
        } ?? AWSEndpoint(secure: false, host: "169.254.169.254")
        return IMDSCredentials(endpoint: imds)
    }

    private func webIdentity(roleARN: String, tokenFile: String, sessionName: String?) throws(AWSError) -> WebIdentityCredentials {
        let region = try region()
        return WebIdentityCredentials(
            roleARN: roleARN, tokenFile: tokenFile, sessionName: sessionName ?? "berth-\(Int(Date().timeIntervalSince1970))",
            sts: try stsEndpoint(region: region), region: region ?? "us-east-1", files: files)
    }

    private func value(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// The chosen profile's settings, the credentials file's winning over the config file's; nil
    /// when neither file has the profile (an error if `AWS_PROFILE` asked for it by name).
    func profileSettings() throws(AWSError) -> (name: String, settings: [String: String], where: String)? {
        let name = value("AWS_PROFILE") ?? value("AWS_DEFAULT_PROFILE") ?? "default"
        let home = value("HOME") ?? ""
        let credentialsPath = value("AWS_SHARED_CREDENTIALS_FILE") ?? "\(home)/.aws/credentials"
        let configPath = value("AWS_CONFIG_FILE") ?? "\(home)/.aws/config"
        var settings: [String: String] = [:]
        var found: [String] = []
        for (path, isConfig) in [(configPath, true), (credentialsPath, false)] {
            guard let bytes = files.read(path) else { continue }
            let file = try SharedConfigFile.parse(String(decoding: bytes, as: UTF8.self), path: path, isConfigFile: isConfig)
            if let section = file.profiles[name] {
                settings.merge(section) { _, new in new }
                found.append(path)
            }
        }
        if found.isEmpty {
            if value("AWS_PROFILE") != nil {
                throw .credentials(source: "AWS_PROFILE", message: "profile \(name) is in neither \(credentialsPath) nor \(configPath)")
            }
            return nil
        }
        return (name, settings, found.joined(separator: ", "))
    }
}
