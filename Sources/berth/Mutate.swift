import ArgumentParser
import BerthAdmission
import BerthModel
import BerthScheduling
import Foundation

struct Mutate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dry-run manifests through the webhook's mutation policy.",
        discussion: """
            Reads multi-document YAML or JSON. Pods are mutated as the webhook would mutate them; the pod
            templates of Deployments, StatefulSets, ReplicaSets, Jobs and CronJobs as the pods they will
            create (DaemonSet templates are exempt); every other document passes through unchanged.
            -o patch prints the JSON Patch of a single document: what the webhook would answer.

            Example: kubectl patch --local -f pod.yaml --type=json -p "$(berth mutate -f pod.yaml -o patch)" -o yaml
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case yaml, json, patch
    }

    @OptionGroup var input: ManifestOptions

    @Option(name: .shortAndLong, help: "Output format: yaml, json or patch.")
    var output: Output = .yaml


    @Flag(name: .shortAndLong, help: "Explain on stderr what was decided for each pod.")
    var verbose = false

    func run() throws {
        try failing {
            let mutator = try input.mutator().mutator
            let documents = try input.documents()
            if output == .patch, documents.count != 1 {
                throw CLIError(message: "\(input.displayName): -o patch needs exactly one document, found \(documents.count)")
            }
            var results: [ManifestMutator.Result] = []
            var failures: [String] = []
            for (index, document) in documents.enumerated() {
                do {
                    results.append(try mutator.mutate(document.value))
                } catch {
                    failures.append("\(input.displayName): document \(index + 1) (line \(document.line)): \(error)")
                }
            }
            // Nothing on stdout when any document is bad: a half-mutated stream piped into
            // `kubectl apply` would be worse than none.
            guard failures.isEmpty else {
                for failure in failures.dropLast() { Terminal.error(failure) }
                throw CLIError(message: failures[failures.count - 1])
            }
            if verbose {
                for (index, result) in results.enumerated() {
                    for pod in result.pods { Terminal.error(explain(document: index + 1, pod.path, pod.mutation)) }
                }
            }
            switch output {
            case .patch:
                Terminal.write(JSONWriter.string(results[0].patch.json) + "\n")
            case .json:
                let values = results.map(\.mutated)
                let combined: JSON = values.count == 1 ? values[0] : ["apiVersion": "v1", "kind": "List", "items": .array(values)]
                Terminal.write(JSONWriter.string(combined, pretty: true) + "\n")
            case .yaml:
                Terminal.write(YAMLWriter.string(results.map(\.mutated)))
            }
        }
    }

    private func explain(document: Int, _ path: JSONPointer, _ mutation: Mutation) -> String {
        let location = path.tokens.isEmpty ? "" : " \(path)"
        if let reason = mutation.exemptReason { return "document \(document)\(location): exempt (\(reason))" }
        let kinds = mutation.kinds.isEmpty ? "nothing to change" : mutation.kinds.map(\.rawValue).joined(separator: ", ")
        let gpus = mutation.gpuResources.isEmpty ? "" : " [\(mutation.gpuResources.joined(separator: ", "))]"
        let warnings = mutation.warnings.map { "; warning: \($0)" }.joined()
        return "document \(document)\(location): \(mutation.podClass?.rawValue ?? "?")\(gpus): \(kinds)\(warnings)"
    }
}

/// The input both `mutate` and `plan` read: manifests, a config, a default namespace.
struct ManifestOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The manifest file, or - for standard input.")
    var file: String

    @Option(help: "A BerthConfig file (defaults apply without one).")
    var config: String?

    @Option(name: [.customShort("n"), .long], help: "Namespace for documents that name none.")
    var namespace: String = "default"

    var displayName: String { ManifestFile.name(file) }

    /// The config, then the mutator the webhook would use with it.
    func mutator() throws -> (settings: BerthConfig, provisioner: ProvisionerConfig, mutator: ManifestMutator) {
        let (settings, provisioner) = try ConfigFile.load(config)
        return (settings, provisioner, ManifestMutator(policy: MutationPolicy(config: settings.webhook), defaultNamespace: namespace))
    }

    func documents() throws -> [YAMLDocument] { try ManifestFile.read(file) }
}

/// Reading manifests: YAML streams, or one JSON value (numbers kept exactly as written).
enum ManifestFile {
    static func name(_ path: String) -> String { path == "-" ? "<stdin>" : path }

    static func read(_ path: String) throws -> [YAMLDocument] {
        let text = try readText(path)
        let trimmed = text.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        if trimmed.first == "{" || trimmed.first == "[" {
            do {
                return [YAMLDocument(value: try JSONParser.parse(text), line: 1)]
            } catch {
                throw CLIError(message: "\(name(path)): invalid JSON: \(error)")
            }
        }
        do {
            // Empty documents (a stray `---`) carry nothing to mutate or print.
            return try YAMLReader.documents(text).filter { !$0.value.isNull }
        } catch {
            throw CLIError(message: "\(name(path)): \(error)")
        }
    }

    static func readText(_ path: String) throws -> String {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CLIError(message: "\(path): cannot read the file (missing or not readable)")
            }
            data = contents
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIError(message: "\(name(path)): not UTF-8 text")
        }
        return text
    }
}

enum ConfigFile {
    /// The config file, both sections read strictly once (defaults without a file): every command
    /// refuses a bad provisioner section, even one that does not use it.
    static func load(_ path: String?) throws -> (berth: BerthConfig, provisioner: ProvisionerConfig) {
        guard let path else { return (BerthConfig(), ProvisionerConfig()) }
        let text = try ManifestFile.readText(path)
        let config: BerthConfig
        do {
            config = try BerthConfig(yaml: text, source: path)
        } catch {
            throw CLIError(message: "config \(error)")
        }
        guard let section = config.provisioner else { return (config, ProvisionerConfig()) }
        do {
            return (config, try ProvisionerConfig(config: section, path: "provisioner"))
        } catch {
            throw CLIError(message: "config \(path): \(error)")
        }
    }

    /// What the config cannot check alone: warm schedules' instance types against the catalog
    /// (EC2's is read only at start) and the pools that may launch them.
    static func checkWarm(_ provisioner: ProvisionerConfig, catalog: InstanceCatalog, source: String?) throws {
        do {
            try provisioner.warm.checkInstanceTypes(pools: provisioner.pools, catalog: catalog, path: "provisioner.warm")
        } catch {
            throw CLIError(message: "config \(source ?? "defaults"): \(error)")
        }
    }
}

/// `--catalog FILE`: the built-in catalog with the file's types laid over it.
enum CatalogFile {
    static func load(_ path: String?) throws -> InstanceCatalog {
        guard let path else { return .builtIn() }
        let text = try ManifestFile.readText(path)
        do {
            let json = try YAMLReader.document(text)
            return try InstanceCatalog.builtIn().overlaid(with: json, source: path)
        } catch let error as ConfigError {
            throw CLIError(message: "catalog \(error)")
        } catch {
            throw CLIError(message: "catalog \(path): \(error)")
        }
    }
}
