/// RFC 3986 percent-encoding: everything but the unreserved characters (`A–Z a–z 0–9 - . _ ~`)
/// becomes `%XX` with upper-case hex. A space is `%20`, never `+`. Used for Kubernetes API path
/// segments and query values, and for AWS SigV4's canonical request, which requires exactly this.
public enum PercentEncoding {
    /// `keepSlash` leaves `/` as it is (a whole path rather than one segment).
    public static func encode(_ text: String, keepSlash: Bool = false) -> String {
        let hex: StaticString = "0123456789ABCDEF"
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex.utf8Start[Int(byte >> 4)])
                out.append(hex.utf8Start[Int(byte & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
