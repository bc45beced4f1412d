// Pure value type: no imports, so the parser files compile standalone for fuzzing
// (Tests/Fuzz/fuzz.mk builds HTTPHeaders.swift, HTTPRequest.swift, HTTPParseError.swift and this file).

/// Limits the parser enforces while bytes arrive, so memory per connection stays bounded.
public struct HTTPParserLimits: Sendable, Hashable {
    /// Request line + header section (and, separately, the chunked trailer section) → 431.
    public var maxHeaderBytes: Int
    public var maxHeaderCount: Int
    /// Decoded body size → 413, detected as soon as the declared length or the chunks exceed it.
    public var maxBodyBytes: Int

    public init(maxHeaderBytes: Int = 32 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 3 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

public enum HTTPParserEvent: Sendable {
    case request(HTTPRequest)
    /// The head carried `Expect: 100-continue` and the body has not arrived yet: send "100 Continue".
    case continueExpected
    /// Protocol error: answer `status` and close. The parser stays failed.
    case error(HTTPParseError)
}

/// An incremental HTTP/1.1 request parser over bytes.
///
/// Feed bytes with `append`, then call `next()` until it returns nil (needs more bytes).
/// Pipelined requests come out one by one, in order. Bare LF is rejected everywhere (400):
/// tolerating it in some places and not others is how request smuggling starts.
public struct HTTPParser: Sendable {
    public let limits: HTTPParserLimits
    /// Body bytes the server can take on for the next request right now (its memory budget less
    /// what other connections hold); a body declared or chunked past it → 503, before it arrives.
    public var bodyBudget = Int.max

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the end of the head resumes (avoids rescanning).
    private var scanIndex = 0
    private var state = State.head
    private var pending: HTTPRequest?
    private var body: [UInt8] = []

    private enum State: Sendable {
        case head
        case fixedBody(length: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed
    }

    public init(limits: HTTPParserLimits = .init()) {
        self.limits = limits
        buffer.reserveCapacity(4096)
    }

    /// True when part of a request has been received (so a read timeout applies rather than idle).
    public var hasPartialRequest: Bool {
        if case .head = state { return readIndex < buffer.count }
        if case .failed = state { return false }
        return true
    }

    /// Bytes buffered and not yet consumed.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Body bytes the request being received has declared (Content-Length) and not yet sent:
    /// memory already promised to it.
    public var promisedBodyBytes: Int {
        if case .fixedBody(let length) = state { return max(0, length - (buffer.count - readIndex)) }
        return 0
    }

    public var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfUseful()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes) {
        compactIfUseful()
        buffer.append(contentsOf: bytes)
    }

    private mutating func compactIfUseful() {
        if readIndex == 0 { return }
        if readIndex == buffer.count {
            // A large body's buffer is given back rather than kept for the connection's lifetime.
            if buffer.capacity > 64 * 1024 {
                buffer = []
                buffer.reserveCapacity(4096)
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
        } else if readIndex >= 16 * 1024 || readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
        } else {
            return
        }
        scanIndex -= readIndex
        readIndex = 0
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> HTTPParserEvent? {
        while true {
            switch state {
            case .failed:
                return nil
            case .head:
                switch parseHead() {
                case .needMore: return nil
                case .failure(let error): return fail(error)
                case .event(let event): return event
                case .progress: continue
                }
            case .fixedBody(let length):
                guard buffer.count - readIndex >= length else { return nil }
                body = Array(buffer[readIndex..<(readIndex + length)])
                readIndex += length
                return finishRequest()
            case .chunkSize:
                switch parseChunkSize() {
                case .needMore: return nil
                case .failure(let error): return fail(error)
                case .event(let event): return event
                case .progress: continue
                }
            case .chunkData(let remaining):
                let available = buffer.count - readIndex
                if available == 0 { return nil }
                let take = min(available, remaining)
                body.append(contentsOf: buffer[readIndex..<(readIndex + take)])
                readIndex += take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
                if take < remaining { return nil }
            case .chunkDataEnd:
                guard buffer.count - readIndex >= 2 else { return nil }
                guard buffer[readIndex] == CR, buffer[readIndex + 1] == LF else {
                    return fail(.badRequest("chunk data not followed by CRLF"))
                }
                readIndex += 2
                state = .chunkSize
            case .trailers(let bytes):
                switch parseTrailerLine(bytesSoFar: bytes) {
                case .needMore: return nil
                case .failure(let error): return fail(error)
                case .event(let event): return event
                case .progress: continue
                }
            }
        }
    }

    // MARK: - Steps

    private enum Step {
        case needMore
        case progress
        case event(HTTPParserEvent)
        case failure(HTTPParseError)
    }

    private mutating func fail(_ error: HTTPParseError) -> HTTPParserEvent {
        state = .failed
        pending = nil
        body = []
        return .error(error)
    }

    private mutating func finishRequest() -> HTTPParserEvent {
        guard var request = pending else { return fail(.badRequest("internal: no request head")) }
        pending = nil
        request.body = body
        body = []
        state = .head
        scanIndex = readIndex
        return .request(request)
    }

    private mutating func parseHead() -> Step {
        // RFC 9112 §2.2: ignore empty lines before the request line (e.g. a CRLF after a body).
        while buffer.count - readIndex >= 2, buffer[readIndex] == CR, buffer[readIndex + 1] == LF {
            readIndex += 2
        }
        if scanIndex < readIndex { scanIndex = readIndex }
        if readIndex == buffer.count { return .needMore }

        var end = -1
        let start = readIndex
        let scanResult: HTTPParseError? = buffer.withUnsafeBufferPointer { bytes -> HTTPParseError? in
            var i = scanIndex
            let count = bytes.count
            while i < count {
                if bytes[i] == LF {
                    if i == start || bytes[i - 1] != CR { return .badRequest("bare LF in request head") }
                    if i - start >= 3, bytes[i - 2] == LF, bytes[i - 3] == CR {
                        end = i + 1
                        return nil
                    }
                }
                i += 1
            }
            scanIndex = count
            return nil
        }
        if let scanResult { return .failure(scanResult) }
        guard end >= 0 else {
            if buffer.count - readIndex > limits.maxHeaderBytes {
                return .failure(.headersTooLarge("request head exceeds \(limits.maxHeaderBytes) bytes"))
            }
            return .needMore
        }
        if end - readIndex > limits.maxHeaderBytes {
            return .failure(.headersTooLarge("request head exceeds \(limits.maxHeaderBytes) bytes"))
        }
        let headStart = readIndex
        readIndex = end
        scanIndex = end
        return interpretHead(headStart..<(end - 2))
    }

    /// `range` covers the request line and header lines, each ending in CRLF (the final empty line excluded).
    private mutating func interpretHead(_ range: Range<Int>) -> Step {
        var lines: [Range<Int>] = []
        lines.reserveCapacity(16)
        buffer.withUnsafeBufferPointer { bytes in
            var lineStart = range.lowerBound
            var i = range.lowerBound
            while i < range.upperBound {
                if bytes[i] == LF {
                    lines.append(lineStart..<(i - 1))  // bare LF was rejected by the scan, so i-1 is CR
                    lineStart = i + 1
                }
                i += 1
            }
        }
        guard let requestLine = lines.first else { return .failure(.badRequest("missing request line")) }
        if lines.count - 1 > limits.maxHeaderCount {
            return .failure(.headersTooLarge("more than \(limits.maxHeaderCount) header fields"))
        }

        // Request line: method SP request-target SP HTTP-version
        guard let firstSpace = index(of: SP, in: requestLine) else {
            return .failure(.badRequest("malformed request line"))
        }
        let methodRange = requestLine.lowerBound..<firstSpace
        guard !methodRange.isEmpty, methodRange.allSatisfy({ isTokenChar(buffer[$0]) }) else {
            return .failure(.badRequest("malformed method"))
        }
        let rest = (firstSpace + 1)..<requestLine.upperBound
        guard let secondSpace = index(of: SP, in: rest) else {
            return .failure(.badRequest("malformed request line"))
        }
        let targetRange = rest.lowerBound..<secondSpace
        guard !targetRange.isEmpty, targetRange.allSatisfy({ buffer[$0] > 0x20 && buffer[$0] < 0x7F }) else {
            return .failure(.badRequest("malformed request target"))
        }
        let versionRange = (secondSpace + 1)..<requestLine.upperBound
        let version: HTTPVersion
        switch parseVersion(versionRange) {
        case .success(let parsed): version = parsed
        case .failure(let error): return .failure(error)
        }

        var headers = HTTPHeaders()
        headers.fields.reserveCapacity(lines.count - 1)
        var contentLength: Int?
        var contentLengthTooLarge = false
        var sawTransferEncoding = false
        var transferCodings: [String] = []
        var connectionClose = false
        var connectionKeepAlive = false
        var expectContinue = false
        var hostCount = 0

        for line in lines.dropFirst() {
            guard !line.isEmpty else { return .failure(.badRequest("empty header line")) }
            let first = buffer[line.lowerBound]
            if first == SP || first == HT { return .failure(.badRequest("obsolete line folding")) }
            guard let colon = index(of: COLON, in: line) else {
                return .failure(.badRequest("header line without colon"))
            }
            let nameRange = line.lowerBound..<colon
            var valueStart = colon + 1
            var valueEnd = line.upperBound
            // One pass over raw bytes per field: name characters, then value characters.
            let fieldError: HTTPParseError? = buffer.withUnsafeBufferPointer { bytes in
                guard !nameRange.isEmpty, nameRange.allSatisfy({ isTokenChar(bytes[$0]) }) else {
                    return .badRequest("malformed header name")
                }
                while valueStart < valueEnd, bytes[valueStart] == SP || bytes[valueStart] == HT { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == SP || bytes[valueEnd - 1] == HT { valueEnd -= 1 }
                for j in valueStart..<valueEnd {
                    let byte = bytes[j]
                    if (byte < 0x20 && byte != HT) || byte == 0x7F { return .badRequest("control character in header value") }
                }
                return nil
            }
            if let fieldError { return .failure(fieldError) }
            let valueRange = valueStart..<valueEnd
            let name = buffer[nameRange]
            let known = knownField(nameRange)
            if known == .contentLength {
                // A list ("5, 5") or repeated fields are accepted only when every value agrees.
                for element in buffer[valueRange].split(separator: COMMA, omittingEmptySubsequences: false) {
                    let trimmed = trim(element)
                    guard !trimmed.isEmpty, trimmed.allSatisfy({ $0 >= ZERO && $0 <= NINE }) else {
                        return .failure(.badRequest("invalid Content-Length"))
                    }
                    // 18 digits always fit in Int; anything longer is beyond any body limit.
                    if trimmed.count > 18 {
                        contentLengthTooLarge = true
                        continue
                    }
                    var value = 0
                    for digit in trimmed { value = value * 10 + Int(digit - ZERO) }
                    if let contentLength, contentLength != value {
                        return .failure(.badRequest("conflicting Content-Length values"))
                    }
                    contentLength = value
                }
            } else if known == .transferEncoding {
                sawTransferEncoding = true
                for element in buffer[valueRange].split(separator: COMMA, omittingEmptySubsequences: false) {
                    let trimmed = trim(element)
                    if trimmed.isEmpty { return .failure(.badRequest("empty transfer coding")) }
                    transferCodings.append(String(decoding: trimmed.map(asciiLower), as: UTF8.self))
                }
            } else if known == .connection {
                for element in buffer[valueRange].split(separator: COMMA) {
                    let token = trim(element)
                    if token.asciiCaseInsensitiveEquals("close".utf8) { connectionClose = true }
                    if token.asciiCaseInsensitiveEquals("keep-alive".utf8) { connectionKeepAlive = true }
                }
            } else if known == .expect {
                guard buffer[valueRange].asciiCaseInsensitiveEquals("100-continue".utf8) else {
                    return .failure(.init(status: 417, reason: "unsupported expectation"))
                }
                expectContinue = true
            } else if known == .host {
                hostCount += 1
            }
            headers.fields.append((
                name: String(decoding: name, as: UTF8.self),
                value: String(decoding: buffer[valueRange], as: UTF8.self)
            ))
        }

        if version == .http1_1 && hostCount != 1 {
            return .failure(.badRequest(hostCount == 0 ? "missing Host header" : "multiple Host headers"))
        }
        var chunked = false
        if sawTransferEncoding {
            if contentLength != nil || contentLengthTooLarge {
                return .failure(.badRequest("both Transfer-Encoding and Content-Length"))
            }
            if version == .http1_0 {
                return .failure(.badRequest("Transfer-Encoding in an HTTP/1.0 request"))
            }
            guard transferCodings.last == "chunked" else {
                return .failure(.badRequest("chunked is not the final transfer coding"))
            }
            guard transferCodings.count == 1 else {
                return .failure(.init(status: 501, reason: "unsupported transfer coding"))
            }
            chunked = true
        }
        if contentLengthTooLarge || (contentLength ?? 0) > limits.maxBodyBytes {
            return .failure(.bodyTooLarge("body exceeds \(limits.maxBodyBytes) bytes"))
        }
        if (contentLength ?? 0) > bodyBudget {
            return .failure(.overBudget)
        }

        let keepAlive = version == .http1_1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        pending = HTTPRequest(
            method: String(decoding: buffer[methodRange], as: UTF8.self),
            target: String(decoding: buffer[targetRange], as: UTF8.self),
            version: version,
            headers: headers,
            keepAlive: keepAlive
        )
        body = []
        let length = contentLength ?? 0
        if chunked {
            state = .chunkSize
        } else if length == 0 {
            return .event(finishRequest())
        } else {
            state = .fixedBody(length: length)
        }
        if expectContinue && version == .http1_1 && readIndex == buffer.count {
            return .event(.continueExpected)
        }
        return .progress
    }

    private func parseVersion(_ range: Range<Int>) -> Result<HTTPVersion, HTTPParseError> {
        let bytes = buffer[range]
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8) else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let major = bytes[range.lowerBound + 5]
        let dot = bytes[range.lowerBound + 6]
        let minor = bytes[range.lowerBound + 7]
        guard major >= ZERO, major <= NINE, dot == UInt8(ascii: "."), minor >= ZERO, minor <= NINE else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let version = HTTPVersion(major: Int(major - ZERO), minor: Int(minor - ZERO))
        guard version == .http1_1 || version == .http1_0 else {
            return .failure(.init(status: 505, reason: "unsupported HTTP version \(version)"))
        }
        return .success(version)
    }

    /// chunk-size [ chunk-ext ] CRLF
    private mutating func parseChunkSize() -> Step {
        let maxLine = 1024
        var lineEnd = -1
        var i = readIndex
        while i < buffer.count && i - readIndex <= maxLine {
            if buffer[i] == LF {
                if i == readIndex || buffer[i - 1] != CR { return .failure(.badRequest("bare LF in chunk size")) }
                lineEnd = i - 1
                break
            }
            i += 1
        }
        if lineEnd < 0 {
            return buffer.count - readIndex > maxLine ? .failure(.badRequest("chunk size line too long")) : .needMore
        }
        var size = 0
        var digits = 0
        var j = readIndex
        while j < lineEnd, let value = hexValue(buffer[j]) {
            digits += 1
            // 15 hex digits always fit in Int; a larger declared chunk is over any limit anyway.
            if digits > 15 { return .failure(.bodyTooLarge("chunk size too large")) }
            size = size * 16 + value
            j += 1
        }
        if digits == 0 { return .failure(.badRequest("invalid chunk size")) }
        if j < lineEnd {
            // Only whitespace then ';' may follow (chunk extensions are ignored, but must be clean).
            while j < lineEnd, buffer[j] == SP || buffer[j] == HT { j += 1 }
            guard j < lineEnd, buffer[j] == SEMICOLON else { return .failure(.badRequest("invalid chunk size")) }
            while j < lineEnd {
                let byte = buffer[j]
                if (byte < 0x20 && byte != HT) || byte == 0x7F { return .failure(.badRequest("invalid chunk extension")) }
                j += 1
            }
        }
        readIndex = lineEnd + 2
        if size == 0 {
            state = .trailers(bytes: 0)
            return .progress
        }
        if size > limits.maxBodyBytes - body.count {
            return .failure(.bodyTooLarge("body exceeds \(limits.maxBodyBytes) bytes"))
        }
        if size > bodyBudget - body.count {
            return .failure(.overBudget)
        }
        state = .chunkData(remaining: size)
        return .progress
    }

    /// Trailer fields are validated for framing and size, then dropped.
    private mutating func parseTrailerLine(bytesSoFar: Int) -> Step {
        var i = readIndex
        var lineEnd = -1
        while i < buffer.count {
            if buffer[i] == LF {
                if i == readIndex || buffer[i - 1] != CR { return .failure(.badRequest("bare LF in trailer")) }
                lineEnd = i - 1
                break
            }
            i += 1
        }
        let total = bytesSoFar + (lineEnd < 0 ? buffer.count - readIndex : lineEnd + 2 - readIndex)
        if total > limits.maxHeaderBytes {
            return .failure(.headersTooLarge("trailer section exceeds \(limits.maxHeaderBytes) bytes"))
        }
        if lineEnd < 0 { return .needMore }
        let line = readIndex..<lineEnd
        readIndex = lineEnd + 2
        if line.isEmpty { return .event(finishRequest()) }
        let first = buffer[line.lowerBound]
        if first == SP || first == HT { return .failure(.badRequest("obsolete line folding in trailer")) }
        guard let colon = index(of: COLON, in: line), colon > line.lowerBound,
              (line.lowerBound..<colon).allSatisfy({ isTokenChar(buffer[$0]) })
        else { return .failure(.badRequest("malformed trailer field")) }
        state = .trailers(bytes: total)
        return .progress
    }

    // MARK: - Bytes

    private enum KnownField { case contentLength, transferEncoding, connection, expect, host }

    /// The framing fields the parser acts on, picked by length first: one comparison per field
    /// instead of one per known name.
    private func knownField(_ range: Range<Int>) -> KnownField? {
        let candidate: (KnownField, StaticString)
        switch range.count {
        case 14: candidate = (.contentLength, "content-length")
        case 17: candidate = (.transferEncoding, "transfer-encoding")
        case 10: candidate = (.connection, "connection")
        case 6: candidate = (.expect, "expect")
        case 4: candidate = (.host, "host")
        default: return nil
        }
        let name = candidate.1
        return buffer.withUnsafeBufferPointer { bytes in
            for offset in 0..<range.count where asciiLower(bytes[range.lowerBound + offset]) != name.utf8Start[offset] {
                return nil
            }
            return candidate.0
        }
    }

    private func index(of byte: UInt8, in range: Range<Int>) -> Int? {
        var i = range.lowerBound
        while i < range.upperBound {
            if buffer[i] == byte { return i }
            i += 1
        }
        return nil
    }

    private func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == SP || bytes[start] == HT { start += 1 }
        while end > start, bytes[end - 1] == SP || bytes[end - 1] == HT { end -= 1 }
        return bytes[start..<end]
    }
}

private let CR = UInt8(ascii: "\r")
private let LF = UInt8(ascii: "\n")
private let SP = UInt8(ascii: " ")
private let HT = UInt8(ascii: "\t")
private let COLON = UInt8(ascii: ":")
private let COMMA = UInt8(ascii: ",")
private let SEMICOLON = UInt8(ascii: ";")
private let ZERO = UInt8(ascii: "0")
private let NINE = UInt8(ascii: "9")

/// RFC 9110 tchar.
@inline(__always)
private func isTokenChar(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), ZERO...NINE:
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
         UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
         UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

@inline(__always)
private func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case ZERO...NINE: return Int(byte - ZERO)
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
    default: return nil
    }
}
