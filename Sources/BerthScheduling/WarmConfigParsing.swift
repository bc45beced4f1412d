import BerthModel
import Foundation

/// `provisioner.warm`, read strictly like the rest of the provisioner section.
///
/// ```yaml
/// warm:
///   mode: schedule          # off (default) | schedule | auto
///   targetTimeToGPU: 30s    # auto: Go duration, > 0
///   imagePuller: true       # set by the chart when it deploys the pre-pull DaemonSet
///   volumeSizeGiB: 100      # a stopped node's billed volume
///   schedules:              # schedule: every schedule active at an instant adds up
///   - days: Mon-Fri         # Mon..Sun, ranges (Fri-Mon wraps), lists (Mon,Wed,Fri), daily
///     from: "08:30"         # HH:MM local time; quote it (YAML 1.1 reads 19:00 as 1140)
///     to: "19:00"           # to < from spans midnight; "24:00" is the end of the day
///     timeZone: Asia/Seoul  # IANA; default UTC
///     running: 2
///     stopped: 4
///     instanceType: g4dn.xlarge
///     pool: gpu             # optional: one of provisioner.pools
/// ```
extension WarmConfig {
    static let fields = ["mode", "targetTimeToGPU", "imagePuller", "volumeSizeGiB", "schedules"]

    /// Largest gp3 volume (16 TiB).
    static let maximumVolumeSizeGiB = 16384
    /// More warm nodes than this in one schedule is a typo, not a plan.
    static let maximumCount = 1000

    /// Reads the section; `pools` are the provisioner's (a schedule's `pool` must be one of them).
    public init(config json: JSON, path: String, pools: [Pool]) throws(ConfigError) {
        self.init()
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
        let modes = Mode.allCases.map(\.rawValue).joined(separator: ", ")
        switch reader.value("mode") {
        case nil: break
        // YAML 1.1 (Kubernetes' reader, Helm) reads an unquoted `off` as false: it means off.
        case .bool(false)?: mode = .off
        case .string(let name)?:
            guard let mode = Mode(rawValue: name) else {
                throw ConfigError(path: reader.childPath("mode"), message: "\"\(name)\" is not one of \(modes)")
            }
            self.mode = mode
        case let other?: throw ConfigError(path: reader.childPath("mode"), message: "expected one of \(modes), found \(other.typeName)")
        }
        if let target = try reader.duration("targetTimeToGPU", minimum: .milliseconds(1)) { targetTimeToGPU = target }
        imagePuller = try reader.bool("imagePuller") ?? false
        if let size = try reader.number("volumeSizeGiB") {
            guard size == size.rounded(), size >= 1, size <= Double(Self.maximumVolumeSizeGiB) else {
                throw ConfigError(path: reader.childPath("volumeSizeGiB"), message: "must be a whole number from 1 to \(Self.maximumVolumeSizeGiB)")
            }
            volumeSizeGiB = Int(size)
        }
        for element in try reader.list("schedules") ?? [] {
            schedules.append(try WarmSchedule(config: element.value, path: element.path, pools: pools))
        }
        switch mode {
        case .schedule where schedules.isEmpty:
            throw ConfigError(path: reader.childPath("schedules"), message: "mode: schedule needs at least one schedule")
        case .auto where !schedules.isEmpty:
            throw ConfigError(path: reader.childPath("schedules"), message: "applies to mode: schedule; mode: auto sizes warm capacity itself")
        default: break
        }
    }

    /// Checks what needs the instance catalog, known only once the cloud is (EC2's catalog is read
    /// at start): each schedule's `instanceType` exists and its pool (or, without `pool`, at least
    /// one pool) may launch it for a notebook (its requirements and `notebookCapacityTypes`).
    /// `path` is the warm section's (`provisioner.warm`).
    public func checkInstanceTypes(pools: [Pool], catalog: InstanceCatalog, path: String) throws(ConfigError) {
        let scheduler = Scheduler(catalog: catalog, pools: pools)
        for (index, schedule) in schedules.enumerated() {
            let where_ = "\(path).schedules[\(index)].instanceType"
            guard let type = catalog[schedule.instanceType] else {
                throw ConfigError(path: where_, message: "\"\(schedule.instanceType)\" is not in the instance catalog (\(catalog.types.count) types; see berth catalog)")
            }
            guard scheduler.warmPool(for: schedule) == nil else { continue }
            let which = schedule.pool.map { "pool \"\($0)\" does not launch it" } ?? "no pool (\(pools.map(\.name).joined(separator: ", "))) launches it"
            throw ConfigError(path: where_, message: "\"\(type.name)\": \(which) for notebooks (requirements, notebookCapacityTypes, or on-demand for stopped nodes rule it out)")
        }
    }
}

extension WarmSchedule {
    static let fields = ["days", "from", "to", "timeZone", "running", "stopped", "instanceType", "pool"]
    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    public init(config json: JSON, path: String, pools: [Pool]) throws(ConfigError) {
        let reader = try FieldReader(json, path: path, allowed: Self.fields)
        let daysPath = reader.childPath("days")
        let daysText: String
        switch reader.value("days") {
        case nil: throw ConfigError(path: daysPath, message: "is required (Mon-Fri, Sat-Sun, Mon,Wed,Fri, daily)")
        case .string(let text)?: daysText = text
        case .array(let items)?:
            var parts: [String] = []
            for (index, item) in items.enumerated() {
                guard let text = item.stringValue else { throw ConfigError(path: "\(daysPath)[\(index)]", message: "expected a day such as Mon or a range such as Mon-Fri, found \(item.typeName)") }
                parts.append(text)
            }
            daysText = parts.joined(separator: ",")
        case let other?: throw ConfigError(path: daysPath, message: "expected days such as Mon-Fri, found \(other.typeName)")
        }
        let days: Set<Int>
        do { days = try Self.parseDays(daysText) } catch { throw ConfigError(path: daysPath, message: error.description) }

        func time(_ key: String, endOfDay: Bool) throws(ConfigError) -> Int {
            let at = reader.childPath(key)
            switch reader.value(key) {
            case nil: throw ConfigError(path: at, message: "is required (HH:MM, local time in timeZone)")
            case .string(let text)?:
                guard let minutes = Self.parseTime(text, endOfDay: endOfDay) else {
                    throw ConfigError(path: at, message: "\"\(text)\" is not a time HH:MM from 00:00 to \(endOfDay ? "24:00" : "23:59")")
                }
                return minutes
            case .number(let number)?:
                // YAML 1.1 (Kubernetes' reader too) reads an unquoted 19:00 as 19×60+0 = 1140.
                throw ConfigError(path: at, message: "expected a quoted time such as \"08:30\", found the number \(number) (YAML reads an unquoted 19:00 as a base-60 number: quote it)")
            case let other?: throw ConfigError(path: at, message: "expected a time such as \"08:30\", found \(other.typeName)")
            }
        }
        let from = try time("from", endOfDay: false)
        let to = try time("to", endOfDay: true)
        guard from != to else {
            throw ConfigError(path: reader.childPath("to"), message: "equals from: a window of no time (a whole day is from \"00:00\" to \"24:00\")")
        }

        let zone = try reader.string("timeZone") ?? "UTC"
        guard TimeZone(identifier: zone) != nil else {
            throw ConfigError(path: reader.childPath("timeZone"), message: "\"\(zone)\" is not a known time zone (an IANA name such as Asia/Seoul, Europe/Paris, America/New_York or UTC)")
        }

        func count(_ key: String) throws(ConfigError) -> Int {
            guard let value = try reader.number(key) else { return 0 }
            guard value == value.rounded(), value >= 0, value <= Double(WarmConfig.maximumCount) else {
                throw ConfigError(path: reader.childPath(key), message: "must be a whole number from 0 to \(WarmConfig.maximumCount)")
            }
            return Int(value)
        }
        let running = try count("running")
        let stopped = try count("stopped")
        guard running + stopped > 0 else { throw ConfigError(path: path, message: "keeps nothing warm: set running, stopped or both above 0") }

        guard let type = try reader.string("instanceType"), !type.isEmpty else {
            throw ConfigError(path: reader.childPath("instanceType"), message: "is required (an instance type such as g4dn.xlarge)")
        }
        let pool = try reader.string("pool")
        if let pool, !pools.contains(where: { $0.name == pool }) {
            throw ConfigError(path: reader.childPath("pool"), message: "\"\(pool)\" is not in provisioner.pools (\(pools.map(\.name).joined(separator: ", ")))")
        }
        self.init(days: days, from: from, to: to, timeZone: zone, running: running, stopped: stopped, instanceType: type, pool: pool)
    }

    struct DaysError: Error, CustomStringConvertible {
        var description: String
    }

    /// `Mon-Fri`, `Sat-Sun`, `Fri-Mon` (wraps past Sunday), `Mon,Wed,Fri`, `Mon-Wed,Sat`, `daily`;
    /// day names are English, three letters, any case. ISO weekdays: 1 = Monday ... 7 = Sunday.
    static func parseDays(_ text: String) throws(DaysError) -> Set<Int> {
        func day(_ name: Substring) throws(DaysError) -> Int {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let index = dayNames.firstIndex(of: trimmed.lowercased()) else {
                throw DaysError(description: "\"\(trimmed)\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun; ranges such as Mon-Fri; lists such as Mon,Wed,Fri; or daily)")
            }
            return index + 1
        }
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "daily" { return Set(1...7) }
        var days = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = item.split(separator: "-", omittingEmptySubsequences: false)
            switch ends.count {
            case 1: days.insert(try day(ends[0]))
            case 2:
                var current = try day(ends[0])
                let last = try day(ends[1])
                days.insert(current)
                while current != last {
                    current = current % 7 + 1
                    days.insert(current)
                }
            default: throw DaysError(description: "\"\(item)\" is not a day or a range such as Mon-Fri")
            }
        }
        return days
    }

    /// `HH:MM` with two digits each, as minutes after midnight; `24:00` only as an end.
    static func parseTime(_ text: String, endOfDay: Bool) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":") else { return nil }
        let digits = [bytes[0], bytes[1], bytes[3], bytes[4]]
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let values = digits.map { Int($0 - UInt8(ascii: "0")) }
        let hour = values[0] * 10 + values[1]
        let minute = values[2] * 10 + values[3]
        guard minute < 60 else { return nil }
        if hour == 24 && minute == 0 && endOfDay { return 24 * 60 }
        guard hour < 24 else { return nil }
        return hour * 60 + minute
    }
}
