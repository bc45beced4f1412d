// libFuzzer target for the YAML and config readers (`make fuzz`, Tests/Fuzz/fuzz.mk). Built with
// `-D BERTH_FUZZ` and the fuzzer it is a libFuzzer binary; built plainly (`swift build`) it replays
// the files or directories it is given through the same checks, so it always compiles.
//
// The input is read as the CLI reads a file (`berth serve --config`, `berth mutate -f`): text that is
// not UTF-8 is refused before any reader sees it. On every UTF-8 input:
//  - YAMLReader.documents (manifests) and YAMLReader.document (config files) never trap; a
//    rejection is a YAMLError with a message, a line (when given) inside the text, and no
//    Swift value dumped into it;
//  - BerthConfig(yaml:source:) and ProvisionerConfig (the `provisioner:` section, as ConfigFile
//    reads it) never trap; a rejection is a ConfigError whose path starts with the file's name
//    (or the section) and whose message says what is wrong;
//  - every document goes through ManifestMutator (`berth mutate`) without trapping, and the
//    patch it builds always applies ("internal error" is Berth's bug, never the input's);
//  - what YAMLWriter writes of a document reads back to the same value.

import BerthAdmission
import BerthModel
import BerthScheduling
import Foundation

#if BERTH_FUZZ
// The globals are built once here, before libFuzzer starts counting allocations per input.
@_cdecl("LLVMFuzzerInitialize")
public func initializeFuzzing(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    _ = mutator
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigReaders(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkConfigReaders(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#else
@main
enum ReplayConfigCorpus {
    static func main() { replay(CommandLine.arguments.dropFirst(), check: checkConfigReaders) }
}
#endif

func fail(_ reason: String, _ bytes: [UInt8]) -> Never {
    let shown = String(decoding: bytes.prefix(400), as: UTF8.self)
    fatalError("\(reason)\ninput (\(bytes.count) bytes): \(shown)")
}

let mutator = ManifestMutator(policy: MutationPolicy())
let source = "fuzz.yaml"

func checkConfigReaders(_ bytes: [UInt8]) {
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    // Lines as YAML counts them: LF, CR, CRLF, and in YAML 1.1 also NEL, LS and PS end a line.
    let lines = text.reduce(1) { ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"].contains($1) ? $0 + 1 : $0 }

    // Manifests: every document of the stream.
    do {
        let documents = try YAMLReader.documents(text)
        for document in documents {
            guard document.line >= 1 else { fail("document line \(document.line)", bytes) }
            checkMutation(document.value, bytes)
            checkWriter(document.value, bytes)
        }
    } catch {
        checkYAMLError(error, lines: lines, bytes)
    }

    // The config file, both sections, as ConfigFile.load reads it.
    do {
        let config = try BerthConfig(yaml: text, source: source)
        if let section = config.provisioner {
            do {
                _ = try ProvisionerConfig(config: section, path: "provisioner")
            } catch {
                checkConfigError(error, prefix: "provisioner", bytes)
            }
        }
    } catch {
        checkConfigError(error, prefix: source, bytes)
    }
}

func checkYAMLError(_ error: YAMLError, lines: Int, _ bytes: [UInt8]) {
    guard !error.message.isEmpty else { fail("a YAMLError without a message", bytes) }
    if let line = error.line, !(0...lines + 1).contains(line) {
        fail("YAMLError at line \(line) of a \(lines)-line text: \(error)", bytes)
    }
    checkReadable(error.message, bytes)
}

func checkConfigError(_ error: ConfigError, prefix: String, _ bytes: [UInt8]) {
    guard error.path.hasPrefix(prefix) else { fail("a ConfigError not naming \(prefix): \(error)", bytes) }
    guard !error.message.isEmpty else { fail("a ConfigError without a message: \(error)", bytes) }
    checkReadable(error.message, bytes)
}

/// A message for a person: no Swift value or type dumped into it.
func checkReadable(_ message: String, _ bytes: [UInt8]) {
    for dump in ["Optional(", "YamlError", "Yams.", "Swift.", "Mark(", "Node.", "(rawValue:"] where message.contains(dump) {
        fail("an error message with \"\(dump)\" in it: \(message)", bytes)
    }
}

func checkMutation(_ document: JSON, _ bytes: [UInt8]) {
    guard document.isObject else { return }
    do {
        let result = try mutator.mutate(document)
        // Idempotent: the policy leaves its own output as it is.
        if !result.patch.isEmpty, let again = try? mutator.mutate(result.mutated), !again.patch.isEmpty {
            fail("mutating the mutated document patches again: \(JSONWriter.string(again.patch.json))", bytes)
        }
    } catch {
        if error.message.hasPrefix("internal error") { fail("ManifestMutator: \(error)", bytes) }
        guard !error.message.isEmpty else { fail("a ManifestMutator.Failure without a message", bytes) }
    }
}

func checkWriter(_ value: JSON, _ bytes: [UInt8]) {
    let written = YAMLWriter.string([value])
    do {
        let again = try YAMLReader.documents(written)
        guard again.count == 1, again[0].value == value else {
            fail("YAMLWriter's text reads back differently:\n\(written)", bytes)
        }
    } catch {
        fail("YAMLWriter's text does not read back (\(error)):\n\(written)", bytes)
    }
}

/// Without the fuzzer: every file named, and every file in every directory named, through `check`.
func replay(_ paths: ArraySlice<String>, check: ([UInt8]) -> Void) {
    var count = 0
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fatalError("\(path): no such file") }
        let files = isDirectory.boolValue
            ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            check(Array(data))
            count += 1
        }
    }
    print("\(count) inputs checked")
}
