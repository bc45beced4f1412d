import Synchronization

/// A response whose body is read as it arrives (a watch), chunk by chunk or line by line.
/// Read it from one thread; `cancel()` may be called from any thread and makes the reader throw
/// `NetError.cancelled`. A body read to its end returns the connection to the client's pool.
public final class HTTPClientStream: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    /// The ALPN protocol the TLS handshake settled on ("http/1.1"), nil without TLS or ALPN.
    public let negotiatedProtocol: String?

    private enum Framing { case length(Int), chunked(remaining: Int), untilClose, done }
    private struct State {
        var connection: HTTPClientConnection?
        var framing: Framing
        var keepAlive: Bool
        var lineBuffer: [UInt8] = []
    }
    private let state: Mutex<State>
    /// The connection, for `cancel()` only (reads hold it through `state`).
    private let connection: HTTPClientConnection
    private let client: HTTPClient

    init(connection: HTTPClientConnection, method: String, client: HTTPClient, maxHeaderBytes: Int) throws(NetError) {
        self.connection = connection
        self.client = client
        negotiatedProtocol = connection.negotiatedALPN
        var headerBytes = 0
        // Status line; 1xx interim answers are skipped.
        var status = 0
        var headers = HTTPHeaders()
        while true {
            guard let line = try connection.readLine(limit: maxHeaderBytes, what: "the status line") else {
                throw .connectionClosed("before answering")
            }
            status = try Self.parseStatusLine(line)
            headers = HTTPHeaders()
            while true {
                guard let field = try connection.readLine(limit: maxHeaderBytes, what: "a header line") else {
                    throw .connectionClosed("in the middle of the response head")
                }
                headerBytes += field.count + 2
                if headerBytes > maxHeaderBytes { throw .malformedResponse("response head larger than \(maxHeaderBytes) bytes") }
                if field.isEmpty { break }
                guard let colon = field.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                    throw .malformedResponse("header line without a name and colon: \(Self.excerpt(field))")
                }
                let name = String(decoding: field[..<colon], as: UTF8.self)
                guard name.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                    throw .malformedResponse("invalid header name: \(Self.excerpt(field[..<colon]))")
                }
                var value = field[(colon + 1)...]
                while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
                while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
                headers.add(name: name, value: String(decoding: value, as: UTF8.self))
            }
            if status >= 200 || status == 101 { break }
        }
        self.status = status
        self.headers = headers
        let connectionTokens = headers.values(for: "Connection").joined(separator: ",").lowercased()
        let keepAlive = !connectionTokens.contains("close")
        let framing: Framing
        if method == "HEAD" || status == 204 || status == 304 {
            framing = .done
        } else if let encoding = headers["Transfer-Encoding"] {
            guard encoding.lowercased().split(separator: ",").last.map({ trimmed(String($0)) }) == "chunked" else {
                throw .malformedResponse("unsupported Transfer-Encoding \"\(encoding)\"")
            }
            framing = .chunked(remaining: 0)
        } else if let length = headers["Content-Length"] {
            let values = Set(headers.values(for: "Content-Length").map { trimmed($0) })
            guard values.count == 1, let count = Int(values.first!), count >= 0, values.first!.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw .malformedResponse("invalid Content-Length \"\(length)\"")
            }
            framing = count == 0 ? .done : .length(count)
        } else {
            framing = .untilClose
        }
        state = Mutex(State(connection: connection, framing: framing, keepAlive: keepAlive))
        if case .done = framing { finish() }
    }

    /// Stops the stream from any thread; a blocked `read()` throws `NetError.cancelled`.
    public func cancel() {
        // Never touch a connection already handed back to the pool (another request may own it).
        released.withLock { released in
            if !released { connection.cancel() }
        }
    }

    /// Set (under its lock) before the connection goes back to the pool.
    private let released = Mutex(false)

    /// The next piece of body as it arrives; nil at the end of the body.
    public func read() throws(NetError) -> [UInt8]? {
        let piece = try state.withLock { state throws(NetError) -> [UInt8]? in try Self.read(&state) }
        if piece == nil { finish() }
        return piece
    }

    /// The next line of the body (LF-terminated, CR stripped), for line-delimited JSON; nil at the
    /// end. A last line without LF is returned too. Lines longer than `limit` are an error.
    public func readLine(limit: Int = 16 * 1024 * 1024) throws(NetError) -> [UInt8]? {
        while true {
            let line = try state.withLock { state throws(NetError) -> [UInt8]?? in
                if let newline = state.lineBuffer.firstIndex(of: 10) {
                    var end = newline
                    if end > 0 && state.lineBuffer[end - 1] == 13 { end -= 1 }
                    let line = Array(state.lineBuffer[..<end])
                    state.lineBuffer.removeSubrange(...newline)
                    return .some(line)
                }
                if state.lineBuffer.count > limit { throw .malformedResponse("body line longer than \(limit) bytes") }
                guard let more = try Self.read(&state) else {
                    if state.lineBuffer.isEmpty { return .some(nil) }
                    defer { state.lineBuffer.removeAll() }
                    return .some(state.lineBuffer)
                }
                state.lineBuffer.append(contentsOf: more)
                return .none
            }
            if let line {
                if line == nil { finish() }
                return line
            }
        }
    }

    /// Returns the connection to the pool if the body was read to its end and it may be reused.
    private func finish() {
        let reusable = state.withLock { state -> HTTPClientConnection? in
            guard let connection = state.connection, case .done = state.framing else { return nil }
            state.connection = nil
            return state.keepAlive ? connection : nil
        }
        if let reusable {
            released.withLock { $0 = true }
            client.checkin(reusable)
        }
    }

    private static func read(_ state: inout State) throws(NetError) -> [UInt8]? {
        guard let connection = state.connection else { return nil }
        do throws(NetError) {
            while true {
                switch state.framing {
                case .done:
                    return nil
                case .length(let remaining):
                    let piece = try connection.readSome(max: remaining)
                    if piece.isEmpty { throw NetError.connectionClosed("with \(remaining) bytes of the body still to come") }
                    state.framing = remaining == piece.count ? .done : .length(remaining - piece.count)
                    return piece
                case .untilClose:
                    let piece = try connection.readSome(max: 64 * 1024)
                    if piece.isEmpty {
                        state.framing = .done
                        state.keepAlive = false
                        return nil
                    }
                    return piece
                case .chunked(let remaining):
                    if remaining > 0 {
                        let piece = try connection.readSome(max: remaining)
                        if piece.isEmpty { throw NetError.connectionClosed("in the middle of a chunk") }
                        let left = remaining - piece.count
                        if left == 0 {
                            guard let end = try connection.readLine(limit: 2, what: "a chunk's end"), end.isEmpty else {
                                throw NetError.malformedResponse("chunk not followed by CRLF")
                            }
                        }
                        state.framing = .chunked(remaining: left)
                        return piece
                    }
                    guard let sizeLine = try connection.readLine(limit: 1024, what: "a chunk size line") else {
                        throw NetError.connectionClosed("before the end of the chunked body")
                    }
                    let sizeText = sizeLine.prefix { $0 != UInt8(ascii: ";") }.filter { $0 != 32 && $0 != 9 }
                    guard !sizeText.isEmpty, sizeText.count <= 15,
                          let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16), size >= 0 else {
                        throw NetError.malformedResponse("invalid chunk size line: \(excerpt(sizeLine))")
                    }
                    if size == 0 {
                        // Trailer fields until an empty line.
                        while true {
                            guard let trailer = try connection.readLine(limit: 8192, what: "the chunked trailer") else {
                                throw NetError.connectionClosed("in the chunked trailer")
                            }
                            if trailer.isEmpty { break }
                        }
                        state.framing = .done
                        return nil
                    }
                    state.framing = .chunked(remaining: size)
                }
            }
        } catch {
            state.connection = nil  // never reuse a connection after an error
            throw error
        }
    }

    private static func parseStatusLine(_ line: [UInt8]) throws(NetError) -> Int {
        // "HTTP/1.1 200 OK" (reason optional).
        guard line.count >= 12, line.starts(with: Array("HTTP/1.".utf8)), line[8] == 32,
              line[9...11].allSatisfy({ $0 >= 48 && $0 <= 57 }), line.count == 12 || line[12] == 32 else {
            throw .malformedResponse("invalid status line: \(excerpt(line))")
        }
        return Int(line[9] - 48) * 100 + Int(line[10] - 48) * 10 + Int(line[11] - 48)
    }

    static func excerpt(_ bytes: some Collection<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(80), as: UTF8.self)
        let quoted = text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
        return "\"\(quoted)\"" + (bytes.count > 80 ? "..." : "")
    }
}

private func trimmed(_ text: String) -> String {
    var bytes = Substring(text).utf8[...]
    while let first = bytes.first, first == 32 || first == 9 { bytes = bytes.dropFirst() }
    while let last = bytes.last, last == 32 || last == 9 { bytes = bytes.dropLast() }
    return String(decoding: bytes, as: UTF8.self)
}
