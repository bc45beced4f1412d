/// The AWS shared credentials and config files: INI sections of `key = value`. In the config file
/// sections are `[default]` and `[profile NAME]`; in the credentials file `[NAME]`. Indented lines
/// continue the previous key's nested block (`s3 =` ...) and are skipped.
public struct SharedConfigFile: Sendable, Equatable {
    public var profiles: [String: [String: String]]

    /// `isConfigFile` picks the section naming rule; `path` names the file in errors.
    public static func parse(_ text: String, path: String, isConfigFile: Bool) throws(AWSError) -> SharedConfigFile {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if line.first == " " || line.first == "\t" { continue }  // nested block of the previous key
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]") else {
                    throw .credentials(source: path, message: "line \(lineNumber): section header \"\(trimmed)\" lacks the closing ]")
                }
                var name = trimmed.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if isConfigFile && name != "default" {
                    guard name.hasPrefix("profile ") else { current = nil; continue }  // [sso-session x], [services x]
                    name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces)
                }
                guard !name.isEmpty else { throw .credentials(source: path, message: "line \(lineNumber): empty section name") }
                current = name
                profiles[name, default: [:]] = profiles[name] ?? [:]
                continue
            }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw .credentials(source: path, message: "line \(lineNumber): expected \"key = value\" or a [section]")
            }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw .credentials(source: path, message: "line \(lineNumber): a key is missing before \"=\"") }
            guard let section = current else {
                if profiles.isEmpty && !isConfigFile {
                    throw .credentials(source: path, message: "line \(lineNumber): \"\(key)\" comes before any [section]")
                }
                continue
            }
            profiles[section]![key.lowercased()] = value
        }
        return SharedConfigFile(profiles: profiles)
    }
}
