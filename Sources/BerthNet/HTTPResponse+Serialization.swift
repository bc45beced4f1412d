extension HTTPResponse {
    /// Appends status line, headers and body to `buffer`. `Content-Length` is always computed here
    /// (except for 1xx/204, which have none);
    /// `Content-Length`, `Transfer-Encoding` and `Connection` set by the responder are replaced.
    func serialize(into buffer: inout [UInt8], keepAlive: Bool, requestVersion: HTTPVersion, omitBody: Bool) {
        buffer.append(ascii: "HTTP/1.1 ")
        appendDecimal(status, to: &buffer)
        buffer.append(0x20)
        var reason = HTTPResponse.reasonPhrase(status)
        reason.withUTF8 { buffer.append(contentsOf: $0) }
        buffer.append(ascii: "\r\n")
        for field in headers {
            let name = field.name.utf8
            if name.asciiCaseInsensitiveEquals("content-length".utf8)
                || name.asciiCaseInsensitiveEquals("transfer-encoding".utf8)
                || name.asciiCaseInsensitiveEquals("connection".utf8) {
                continue
            }
            appendStrippingLineBreaks(field.name, to: &buffer)
            buffer.append(ascii: ": ")
            appendStrippingLineBreaks(field.value, to: &buffer)
            buffer.append(ascii: "\r\n")
        }
        // RFC 9110 §8.6: no Content-Length (and no body) in 1xx and 204 answers.
        let bodyless = status < 200 || status == 204
        if bodyStream != nil && !bodyless {
            buffer.append(ascii: "Transfer-Encoding: chunked\r\n")
        } else if !bodyless {
            buffer.append(ascii: "Content-Length: ")
            appendDecimal(body.count, to: &buffer)
            buffer.append(ascii: "\r\n")
        }
        if !keepAlive {
            buffer.append(ascii: "Connection: close\r\n")
        } else if requestVersion == .http1_0 {
            buffer.append(ascii: "Connection: keep-alive\r\n")
        }
        buffer.append(ascii: "\r\n")
        if !omitBody && !bodyless && bodyStream == nil { buffer.append(contentsOf: body) }
    }

    /// One chunk of a chunked body (RFC 9112 §7.1).
    static func appendChunk(_ chunk: [UInt8], to buffer: inout [UInt8]) {
        guard !chunk.isEmpty else { return }
        buffer.append(contentsOf: String(chunk.count, radix: 16).utf8)
        buffer.append(ascii: "\r\n")
        buffer.append(contentsOf: chunk)
        buffer.append(ascii: "\r\n")
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}

private func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    if value <= 0 {
        buffer.append(UInt8(ascii: "0"))
        return
    }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    var remaining = value
    withUnsafeMutableBytes(of: &digits) { raw in
        while remaining > 0 {
            raw[count] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
            count += 1
        }
        for i in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[i]) }
    }
}

/// Never let a responder's CR/LF split the response (header injection).
private func appendStrippingLineBreaks(_ text: String, to buffer: inout [UInt8]) {
    var text = text
    text.withUTF8 { bytes in
        if !bytes.contains(where: { $0 == 13 || $0 == 10 }) {
            buffer.append(contentsOf: bytes)
        } else {
            buffer.append(contentsOf: bytes.lazy.filter { $0 != 13 && $0 != 10 })
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends a literal's bytes with one copy (the generic `append(contentsOf: "…".utf8)` path
    /// costs several times more per call).
    @inlinable
    mutating func append(ascii literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
