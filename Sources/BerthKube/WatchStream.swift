import BerthModel
import BerthNet

/// An open watch: events are decoded as their lines arrive. Read from one thread; `cancel()`
/// from any thread ends a blocked `next()` with `nil`.
public final class WatchStream: Sendable {
    private let stream: HTTPClientStream
    private let path: String

    init(stream: HTTPClientStream, path: String) {
        self.stream = stream
        self.path = path
    }

    /// The next event; nil when the server ended the watch (timeout) or it was cancelled.
    /// A line that is not a watch event throws `KubeError.decoding` (the caller restarts the watch).
    public func next(selecting selection: JSONSelection? = nil) throws(KubeError) -> WatchEvent? {
        while true {
            let line: [UInt8]?
            do throws(NetError) {
                line = try stream.readLine()
            } catch {
                if case .cancelled = error { return nil }
                throw .transport(error, method: "GET", path: path + " (watch)")
            }
            guard let line else { return nil }
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            if let selection { return try WatchEvent.decode(line, selecting: selection) }
            return try WatchEvent.decode(line)
        }
    }

    public func cancel() { stream.cancel() }
}

extension KubeClient {
    /// Opens a watch. A non-200 answer (e.g. 410 Gone for a too-old resourceVersion) throws
    /// `KubeError.status`; a 410 may also come later as an ERROR event (the watch cache's way).
    public func watch(_ resource: KubeResource, namespace: String? = nil, options: WatchOptions,
                      readTimeout: Duration = .seconds(330)) throws(KubeError) -> WatchStream {
        let path = resource.path(namespace: namespace)
        let target = path + PathEncoding.query(options.queryItems)
        var refreshed = false
        while true {
            let (request, http) = try prepare("GET", target, body: [], contentType: "application/json")
            limiter.acquire()
            let stream: HTTPClientStream
            do throws(NetError) {
                stream = try http.stream(request, timeout: readTimeout)
            } catch {
                throw .transport(error, method: "GET", path: path + " (watch)")
            }
            if stream.status == 200 { return WatchStream(stream: stream, path: path) }
            var body: [UInt8] = []
            do throws(NetError) {
                while let piece = try stream.read(), body.count < 1 << 20 { body += piece }
            } catch {}
            if stream.status == 401 && credentials.canRefresh && !refreshed {
                refreshed = true
                credentials.invalidate()
                continue
            }
            throw .status(APIStatus.from(httpStatus: stream.status, body: body), method: "GET", path: path + " (watch)")
        }
    }
}
