import BerthModel

/// The one configuration file Berth reads (`apiVersion: berth.dev/v1alpha1`, `kind: BerthConfig`),
/// shared by the webhook and the provisioner. Strict: unknown fields are errors.
public struct BerthConfig: Sendable, Equatable {
    public static let apiVersion = "berth.dev/v1alpha1"
    public static let kind = "BerthConfig"

    public var webhook = WebhookConfig()
    /// The `provisioner:` section as written; BerthScheduling's `ProvisionerConfig` reads it
    /// (strictly) — that module sits above this one, so the section is handed over unparsed.
    public var provisioner: JSON?

    public init() {}

    /// Parses the YAML (or JSON) text of a config file. `source` names the file in errors.
    public init(yaml text: String, source: String) throws(ConfigError) {
        let document: JSON
        do {
            document = try YAMLReader.document(text)
        } catch {
            throw ConfigError(path: source, message: error.description)
        }
        do {
            try self.init(config: document)
        } catch {
            throw ConfigError(path: error.path.isEmpty ? source : "\(source): \(error.path)", message: error.message)
        }
    }

    public init(config json: JSON) throws(ConfigError) {
        if case let .object(object) = json, object.isEmpty { return }
        let reader = try FieldReader(json, path: "", allowed: ["apiVersion", "kind", "webhook", "provisioner"])
        let apiVersion = try reader.string("apiVersion")
        guard apiVersion == Self.apiVersion else {
            throw ConfigError(path: "apiVersion", message: "must be \"\(Self.apiVersion)\", found \(apiVersion.map { "\"\($0)\"" } ?? "nothing")")
        }
        let kind = try reader.string("kind")
        guard kind == Self.kind else {
            throw ConfigError(path: "kind", message: "must be \"\(Self.kind)\", found \(kind.map { "\"\($0)\"" } ?? "nothing")")
        }
        if let webhook = reader.value("webhook") {
            self.webhook = try WebhookConfig(config: webhook, path: "webhook")
        }
        provisioner = reader.value("provisioner")
    }
}
