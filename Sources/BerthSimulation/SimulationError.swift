/// Everything `berth simulate` can refuse, with where it was found.
public enum SimulationError: Error, Equatable, CustomStringConvertible {
    /// A trace row (or its header) that cannot be read: the line (1-based), the column, why.
    case badTrace(source: String, line: Int, field: String, message: String)
    /// An option out of range (`--days 0`).
    case badOption(name: String, message: String)

    public var description: String {
        switch self {
        case let .badTrace(source, line, field, message): "\(source):\(line): \(field): \(message)"
        case let .badOption(name, message): "\(name): \(message)"
        }
    }
}
