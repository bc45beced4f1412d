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
                // Invariants: bodies respect the limit; the path is a prefix of the target.
                precondition(request.body.count <= limits.maxBodyBytes)
                precondition(request.target.hasPrefix(request.path))
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
