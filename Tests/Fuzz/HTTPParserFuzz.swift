// libFuzzer entry point for the HTTP/1.1 parser. Built standalone (no package) from the parser's
// pure files: see fuzz.mk. The input is split at a position taken from its first byte, so
// incremental parsing across buffer boundaries is exercised too.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let limits = HTTPParserLimits(maxHeaderBytes: 2048, maxHeaderCount: 32, maxBodyBytes: 4096)
    var parser = HTTPParser(limits: limits)
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    var requestBytes = 0
    for part in [bytes[0..<split], bytes[split..<size]] {
        parser.append(contentsOf: part)
        while let event = parser.next() {
            switch event {
            case .request(let request):
                // Invariants: bodies respect the limit; the path is a prefix of the target
                // (origin-form, `/mutate?x`) or follows its scheme and authority (absolute-form,
                // `https://host:8443/mutate?x`).
                precondition(request.body.count <= limits.maxBodyBytes)
                precondition(request.target.hasPrefix(request.path) || isAbsoluteForm(request.target, path: request.path))
                requestBytes += request.body.count
            case .continueExpected:
                break
            case .error(let error):
                precondition([400, 413, 417, 431, 501, 505].contains(error.status))
                precondition(parser.hasFailed)
            }
        }
    }
    precondition(requestBytes <= size)
    return 0
}

/// `scheme "://" authority` followed by `path` (RFC 9112 §3.2.2; an empty path is "/"): the scheme
/// an ASCII letter then letters, digits, '+', '-' or '.', the authority up to the first '/' or '?'
/// (as the parser reads it; a '#' cannot occur in a valid target either way).
func isAbsoluteForm(_ target: String, path: String) -> Bool {
    let bytes = Array(target.utf8)
    func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
    func isSchemeByte(_ byte: UInt8) -> Bool {
        isLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }
    guard let first = bytes.first, isLetter(first) else { return false }
    var i = 1
    while i < bytes.count, isSchemeByte(bytes[i]) { i += 1 }
    guard bytes.count - i >= 3, bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"), bytes[i + 2] == UInt8(ascii: "/") else {
        return false
    }
    i += 3
    while i < bytes.count, bytes[i] != UInt8(ascii: "/"), bytes[i] != UInt8(ascii: "?") { i += 1 }
    let remainder = bytes[i...]
    let pathBytes = Array(path.utf8)
    if remainder.starts(with: pathBytes) { return true }
    return path == "/" && (remainder.isEmpty || remainder.first == UInt8(ascii: "?"))
}
