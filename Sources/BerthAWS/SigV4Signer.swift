import BerthNet

/// AWS Signature Version 4 (docs.aws.amazon.com "Create a signed AWS API request"): canonical
/// request, string to sign, derived key, `Authorization` header. Pure apart from the hashing:
/// the time is an argument, so the same inputs always give the same signature (and the tests
/// compare it byte for byte with botocore's).
public struct SigV4Signer: Sendable {
    public var region: String
    public var service: String

    public init(region: String, service: String) {
        self.region = region
        self.service = service
    }

    /// A request to sign: what goes on the wire, minus the signature.
    public struct Request: Sendable, Equatable {
        public var method: String
        public var host: String
        /// The path as sent, already percent-encoded where needed (EC2: "/").
        public var path: String
        /// Decoded query parameters, in any order; repeated keys allowed.
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(method: String, host: String, path: String = "/", query: [(String, String)] = [], headers: [(String, String)] = [], body: [UInt8] = []) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }

        public static func == (lhs: Request, rhs: Request) -> Bool {
            lhs.method == rhs.method && lhs.host == rhs.host && lhs.path == rhs.path && lhs.body == rhs.body
                && lhs.query.elementsEqual(rhs.query, by: ==) && lhs.headers.elementsEqual(rhs.headers, by: ==)
        }
    }

    public struct Signed: Sendable {
        /// Headers to send: the request's own plus host, x-amz-date, x-amz-content-sha256 when
        /// asked, x-amz-security-token for session credentials, and Authorization.
        public var headers: [(String, String)]
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
    }

    /// Signs at `timestamp`, formatted `yyyyMMdd'T'HHmmss'Z'` (UTC): see `SigV4Signer.timestamp(epochSeconds:)`.
    public func sign(_ request: Request, credentials: AWSCredentials, timestamp: String) -> Signed {
        let date = String(timestamp.prefix(8))
        var headers = request.headers
        if !headers.contains(where: { $0.0.lowercased() == "host" }) { headers.append(("Host", request.host)) }
        headers.append(("X-Amz-Date", timestamp))
        if let token = credentials.sessionToken { headers.append(("X-Amz-Security-Token", token)) }

        // Canonical headers: lower-case names, values trimmed with inner runs of spaces folded,
        // sorted by name; repeated names joined with commas.
        var canonical: [String: [String]] = [:]
        for (name, value) in headers {
            canonical[name.lowercased(), default: []].append(Self.foldSpaces(value))
        }
        let names = canonical.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(canonical[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let payloadHash = Digest.hex(Digest.sha256(request.body))

        // Sorted by encoded name, then encoded value (byte order: all ASCII by then).
        let encoded: [(name: String, value: String)] = request.query.map { (Self.encode($0.0), Self.encode($0.1)) }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        let canonicalQuery = sorted.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
        let canonicalRequest = [
            request.method, Self.canonicalPath(request.path), canonicalQuery, canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")

        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", timestamp, scope, Digest.hex(Digest.sha256(Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")

        var key = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), Array(date.utf8))
        for part in [region, service, "aws4_request"] {
            key = Digest.hmacSHA256(key: key, Array(part.utf8))
        }
        let signature = Digest.hex(Digest.hmacSHA256(key: key, Array(stringToSign.utf8)))
        headers.append((
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        ))
        return Signed(headers: headers, canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature)
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 requires
    /// (a space is `%20`, never `+`; `~` stays).
    public static func encode(_ text: String, keepSlash: Bool = false) -> String {
        PercentEncoding.encode(text, keepSlash: keepSlash)
    }

    /// The path as sent is already encoded; SigV4 (for every service but S3) encodes it once
    /// more, segment by segment, and normalises an empty path to "/".
    static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return encode(path, keepSlash: true)
    }

    /// Trimmed, with every run of whitespace folded to one space (as botocore and the AWS SDKs do).
    static func foldSpaces(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// `yyyyMMdd'T'HHmmss'Z'` for seconds since 1970 (UTC), without a calendar library.
    public static func timestamp(epochSeconds: Int64) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400
        let secondsOfDay = epochSeconds - days * 86400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)\(two(month))\(two(day))T\(two(secondsOfDay / 3600))\(two(secondsOfDay % 3600 / 60))\(two(secondsOfDay % 60))Z"
    }
}

