import BerthModel
import BerthScheduling
import Foundation
import Testing

@Suite struct WarmConfigTests {
    func parse(_ yaml: String) throws -> ProvisionerConfig {
        try ProvisionerConfig(config: try YAMLReader.document(yaml), path: "provisioner")
    }

    @Test func offByDefault() throws {
        let warm = try parse("emptyAfter: 2m").warm
        #expect(warm == WarmConfig())
        #expect(warm.mode == .off && warm.schedules.isEmpty && !warm.imagePuller && warm.volumeSizeGiB == 100)
    }

    @Test func fullScheduleConfigIsRead() throws {
        let config = try parse(
            """
            pools: [{name: gpu}, {name: big, weight: 5}]
            warm:
              mode: schedule
              targetTimeToGPU: 45s
              imagePuller: true
              volumeSizeGiB: 200
              schedules:
              - days: Mon-Fri
                from: "08:30"
                to: "19:00"
                timeZone: Asia/Seoul
                running: 2
                stopped: 4
                instanceType: g4dn.xlarge
                pool: gpu
              - days: Fri-Mon
                from: "22:00"
                to: "06:00"
                stopped: 1
                instanceType: g5.xlarge
              - days: [Mon, Wed-Thu]
                from: "00:00"
                to: "24:00"
                timeZone: America/New_York
                running: 1
                instanceType: p3.2xlarge
                pool: big
              - {days: daily, from: "12:00", to: "13:00", running: 1, instanceType: g4dn.xlarge}
              - {days: "sat, SUN", from: "09:00", to: "10:00", running: 1, instanceType: g4dn.xlarge}
            """)
        let warm = config.warm
        #expect(warm.mode == .schedule)
        #expect(warm.targetTimeToGPU == .seconds(45))
        #expect(warm.imagePuller)
        #expect(warm.volumeSizeGiB == 200)
        #expect(warm.schedules == [
            WarmSchedule(days: [1, 2, 3, 4, 5], from: 510, to: 1140, timeZone: "Asia/Seoul", running: 2, stopped: 4, instanceType: "g4dn.xlarge", pool: "gpu"),
            WarmSchedule(days: [5, 6, 7, 1], from: 1320, to: 360, timeZone: "UTC", running: 0, stopped: 1, instanceType: "g5.xlarge"),
            WarmSchedule(days: [1, 3, 4], from: 0, to: 1440, timeZone: "America/New_York", running: 1, stopped: 0, instanceType: "p3.2xlarge", pool: "big"),
            WarmSchedule(days: Set(1...7), from: 720, to: 780, timeZone: "UTC", running: 1, stopped: 0, instanceType: "g4dn.xlarge"),
            WarmSchedule(days: [6, 7], from: 540, to: 600, timeZone: "UTC", running: 1, stopped: 0, instanceType: "g4dn.xlarge"),
        ])
    }

    @Test func autoModeIsRead() throws {
        let warm = try parse("warm: {mode: auto, targetTimeToGPU: 1m30s}").warm
        #expect(warm.mode == .auto)
        #expect(warm.targetTimeToGPU == .seconds(90))
        // Off with schedules written down: kept (switching warm off is a one-line change).
        // Unquoted, YAML 1.1 reads off as false: it means off.
        #expect(try parse("warm: {mode: off}").warm.mode == .off)
        #expect(try parse("warm: {mode: 'off', schedules: [{days: Mon, from: '08:00', to: '09:00', running: 1, instanceType: g4dn.xlarge}]}").warm.schedules.count == 1)
    }

    static let mistakes: [(String, String)] = [
        ("warm: {mode: on}",
         "provisioner.warm.mode: expected one of off, schedule, auto, found a boolean"),
        ("warm: {mode: always}",
         "provisioner.warm.mode: \"always\" is not one of off, schedule, auto"),
        ("warm: {mode: auto, targetTimeToGPU: 0s}",
         "provisioner.warm.targetTimeToGPU: must be at least 1ms, found \"0s\""),
        ("warm: {mode: auto, targetTimeToGPU: 30}",
         "provisioner.warm.targetTimeToGPU: expected a string, found a number"),
        ("warm: {mode: auto, targetTimeToGPU: 30 s}",
         "provisioner.warm.targetTimeToGPU: \"30 s\" is not a duration such as 500ms, 60s, 5m or 1h30m"),
        ("warm: {mode: auto, volumeSizeGiB: 0}",
         "provisioner.warm.volumeSizeGiB: must be a whole number from 1 to 16384"),
        ("warm: {mode: auto, imagePuller: yes please}",
         "provisioner.warm.imagePuller: expected true or false, found a string"),
        ("warm: {mode: auto, images: [jupyter/base]}",
         "provisioner.warm.images: unknown field \"images\"; allowed fields: mode, targetTimeToGPU, imagePuller, volumeSizeGiB, schedules"),
        ("warm: {mode: schedule}",
         "provisioner.warm.schedules: mode: schedule needs at least one schedule"),
        ("warm: {mode: schedule, schedules: []}",
         "provisioner.warm.schedules: mode: schedule needs at least one schedule"),
        ("warm: {mode: auto, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge}]}",
         "provisioner.warm.schedules: applies to mode: schedule; mode: auto sizes warm capacity itself"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, runing: 2}]}",
         "provisioner.warm.schedules[0].runing: unknown field \"runing\"; allowed fields: days, from, to, timeZone, running, stopped, instanceType, pool"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, to: '19:00', running: 1, instanceType: g4dn.xlarge, from: '25:00'}]}",
         "provisioner.warm.schedules[0].from: \"25:00\" is not a time HH:MM from 00:00 to 23:59"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, to: '19:00', running: 1, instanceType: g4dn.xlarge, from: '8:3'}]}",
         "provisioner.warm.schedules[0].from: \"8:3\" is not a time HH:MM from 00:00 to 23:59"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, to: '19:00', running: 1, instanceType: g4dn.xlarge, from: '24:00'}]}",
         "provisioner.warm.schedules[0].from: \"24:00\" is not a time HH:MM from 00:00 to 23:59"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', running: 1, instanceType: g4dn.xlarge, to: '19:60'}]}",
         "provisioner.warm.schedules[0].to: \"19:60\" is not a time HH:MM from 00:00 to 24:00"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', running: 1, instanceType: g4dn.xlarge, to: 19:00}]}",
         "provisioner.warm.schedules[0].to: expected a quoted time such as \"08:30\", found the number 1140 (YAML reads an unquoted 19:00 as a base-60 number: quote it)"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', running: 1, instanceType: g4dn.xlarge, to: '08:30'}]}",
         "provisioner.warm.schedules[0].to: equals from: a window of no time (a whole day is from \"00:00\" to \"24:00\")"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, to: '19:00', running: 1, instanceType: g4dn.xlarge}]}",
         "provisioner.warm.schedules[0].from: is required (HH:MM, local time in timeZone)"),
        ("warm: {mode: schedule, schedules: [{from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, days: Mon-Fry}]}",
         "provisioner.warm.schedules[0].days: \"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun; ranges such as Mon-Fri; lists such as Mon,Wed,Fri; or daily)"),
        ("warm: {mode: schedule, schedules: [{from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, days: 'Mon,,Fri'}]}",
         "provisioner.warm.schedules[0].days: \"\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun; ranges such as Mon-Fri; lists such as Mon,Wed,Fri; or daily)"),
        ("warm: {mode: schedule, schedules: [{from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, days: Mon-Wed-Fri}]}",
         "provisioner.warm.schedules[0].days: \"Mon-Wed-Fri\" is not a day or a range such as Mon-Fri"),
        ("warm: {mode: schedule, schedules: [{from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, days: [Mon, 2]}]}",
         "provisioner.warm.schedules[0].days[1]: expected a day such as Mon or a range such as Mon-Fri, found a number"),
        ("warm: {mode: schedule, schedules: [{from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge}]}",
         "provisioner.warm.schedules[0].days: is required (Mon-Fri, Sat-Sun, Mon,Wed,Fri, daily)"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, timeZone: Asia/Seol}]}",
         "provisioner.warm.schedules[0].timeZone: \"Asia/Seol\" is not a known time zone (an IANA name such as Asia/Seoul, Europe/Paris, America/New_York or UTC)"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, stopped: -1}]}",
         "provisioner.warm.schedules[0].stopped: must be a whole number from 0 to 1000"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, stopped: 1.5}]}",
         "provisioner.warm.schedules[0].stopped: must be a whole number from 0 to 1000"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', instanceType: g4dn.xlarge, running: 0, stopped: 0}]}",
         "provisioner.warm.schedules[0]: keeps nothing warm: set running, stopped or both above 0"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: ''}]}",
         "provisioner.warm.schedules[0].instanceType: is required (an instance type such as g4dn.xlarge)"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1}]}",
         "provisioner.warm.schedules[0].instanceType: is required (an instance type such as g4dn.xlarge)"),
        ("pools: [{name: gpu}, {name: big}]\nwarm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge}, {days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, pool: huge}]}",
         "provisioner.warm.schedules[1].pool: \"huge\" is not in provisioner.pools (gpu, big)"),
        ("warm: {mode: schedule, schedules: [{days: Mon-Fri, from: '08:30', to: '19:00', running: 1, instanceType: g4dn.xlarge, pool: notebooks}]}",
         "provisioner.warm.schedules[0].pool: \"notebooks\" is not in provisioner.pools (gpu)"),
        ("warm: [mode, auto]",
         "provisioner.warm: expected an object, found a list"),
    ]

    @Test(arguments: mistakes)
    func mistakesAreNamedWithTheirPath(yaml: String, message: String) throws {
        #expect {
            try parse(yaml)
        } throws: { error in
            (error as? ConfigError)?.description == message
        }
    }

    // MARK: - The instance type, checked against the catalog once it is known

    @Test func instanceTypesAreCheckedAgainstTheCatalogAndPools() throws {
        let config = try parse(
            """
            pools:
            - name: t4
              requirements: [{key: karpenter.k8s.aws/instance-gpu-name, operator: In, values: [t4]}]
            - name: spot-only
              capacityTypes: [spot]
              notebookCapacityTypes: [spot]
            warm:
              mode: schedule
              schedules:
              - {days: Mon-Fri, from: "08:30", to: "19:00", running: 1, instanceType: g4dn.xlarge}
              - {days: Mon-Fri, from: "08:30", to: "19:00", running: 1, instanceType: g5.xlarge}
              - {days: Mon-Fri, from: "08:30", to: "19:00", running: 1, instanceType: g4dn.2xlarge, pool: t4}
            """)
        let catalog = InstanceCatalog.builtIn()
        // g5.xlarge: the t4 pool's requirement rules it out, and the spot-only pool's offerings
        // (on-demand in the built-in catalog) do.
        #expect {
            try config.warm.checkInstanceTypes(pools: config.pools, catalog: catalog, path: "provisioner.warm")
        } throws: { error in
            (error as? ConfigError)?.description
                == "provisioner.warm.schedules[1].instanceType: \"g5.xlarge\": no pool (t4, spot-only) launches it for notebooks (requirements, notebookCapacityTypes, or on-demand for stopped nodes rule it out)"
        }
        var fixed = config.warm
        fixed.schedules[1].instanceType = "g4dn.4xlarge"
        try fixed.checkInstanceTypes(pools: config.pools, catalog: catalog, path: "provisioner.warm")
        fixed.schedules[1].pool = "spot-only"
        #expect {
            try fixed.checkInstanceTypes(pools: config.pools, catalog: catalog, path: "provisioner.warm")
        } throws: { error in
            (error as? ConfigError)?.description
                == "provisioner.warm.schedules[1].instanceType: \"g4dn.4xlarge\": pool \"spot-only\" does not launch it for notebooks (requirements, notebookCapacityTypes, or on-demand for stopped nodes rule it out)"
        }
        fixed.schedules[1].pool = nil
        fixed.schedules[2].instanceType = "g4dn.huge"
        #expect {
            try fixed.checkInstanceTypes(pools: config.pools, catalog: catalog, path: "provisioner.warm")
        } throws: { error in
            (error as? ConfigError)?.description
                == "provisioner.warm.schedules[2].instanceType: \"g4dn.huge\" is not in the instance catalog (\(catalog.types.count) types; see berth catalog)"
        }
    }

    // MARK: - isActive, on the schedule's wall clock

    /// A UTC instant.
    func utc(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        return try #require(formatter.date(from: text))
    }

    @Test func seoulWorkingHoursCheckedAtUTCInstants() throws {
        let seoul = WarmSchedule(days: [1, 2, 3, 4, 5], from: 510, to: 1140, timeZone: "Asia/Seoul", running: 2, stopped: 4, instanceType: "g4dn.xlarge")
        // 2026-03-01 is a Sunday. KST is UTC+9, no daylight saving.
        #expect(!seoul.isActive(at: try utc("2026-03-01T23:29:00Z")))  // Mon 08:29 KST
        #expect(seoul.isActive(at: try utc("2026-03-01T23:30:00Z")))  // Mon 08:30 KST
        #expect(seoul.isActive(at: try utc("2026-03-02T09:59:59Z")))  // Mon 18:59:59 KST
        #expect(!seoul.isActive(at: try utc("2026-03-02T10:00:00Z")))  // Mon 19:00 KST
        #expect(seoul.isActive(at: try utc("2026-03-06T09:59:00Z")))  // Fri 18:59 KST
        #expect(!seoul.isActive(at: try utc("2026-03-06T10:00:00Z")))  // Fri 19:00 KST
        #expect(!seoul.isActive(at: try utc("2026-03-07T00:30:00Z")))  // Sat 09:30 KST
        #expect(!seoul.isActive(at: try utc("2026-03-06T23:30:00Z")))  // Sat 08:30 KST, Fri in UTC
        #expect(!seoul.isActive(at: try utc("2026-03-08T02:00:00Z")))  // Sun 11:00 KST
    }

    @Test func windowSpanningMidnightBelongsToTheDayItStarts() throws {
        let friday = WarmSchedule(days: [5], from: 22 * 60, to: 6 * 60, timeZone: "Europe/Paris", running: 1, stopped: 0, instanceType: "g4dn.xlarge")
        // Paris in March before the change: UTC+1. 2026-03-06 is a Friday.
        #expect(!friday.isActive(at: try utc("2026-03-06T20:59:00Z")))  // Fri 21:59
        #expect(friday.isActive(at: try utc("2026-03-06T21:00:00Z")))  // Fri 22:00
        #expect(friday.isActive(at: try utc("2026-03-06T23:30:00Z")))  // Sat 00:30
        #expect(friday.isActive(at: try utc("2026-03-07T04:59:00Z")))  // Sat 05:59
        #expect(!friday.isActive(at: try utc("2026-03-07T05:00:00Z")))  // Sat 06:00
        #expect(!friday.isActive(at: try utc("2026-03-07T21:30:00Z")))  // Sat 22:30: Saturday is not a day
        #expect(!friday.isActive(at: try utc("2026-03-06T04:00:00Z")))  // Fri 05:00: Thursday's night is not
        // Sunday's night ends on Monday: the wrap from ISO 7 to 1.
        let sunday = WarmSchedule(days: [7], from: 22 * 60, to: 6 * 60, timeZone: "UTC", running: 1, stopped: 0, instanceType: "g4dn.xlarge")
        #expect(sunday.isActive(at: try utc("2026-03-09T05:59:00Z")))  // Mon 05:59
        #expect(!sunday.isActive(at: try utc("2026-03-10T05:59:00Z")))  // Tue 05:59
    }

    @Test func wholeDayWindowEndsAtMidnight() throws {
        let config = try parse("warm: {mode: schedule, schedules: [{days: Sat-Sun, from: '00:00', to: '24:00', running: 1, instanceType: g4dn.xlarge}]}")
        let weekend = try #require(config.warm.schedules.first)
        #expect(!weekend.isActive(at: try utc("2026-03-06T23:59:59Z")))  // Fri
        #expect(weekend.isActive(at: try utc("2026-03-07T00:00:00Z")))  // Sat 00:00
        #expect(weekend.isActive(at: try utc("2026-03-08T23:59:59Z")))  // Sun 23:59:59
        #expect(!weekend.isActive(at: try utc("2026-03-09T00:00:00Z")))  // Mon 00:00
    }

    @Test func daylightSavingChangeFollowsTheWallClock() throws {
        // New York moves from EST (UTC-5) to EDT (UTC-4) at 02:00 on Sunday 2026-03-08.
        let office = WarmSchedule(days: [1, 2, 3, 4, 5], from: 510, to: 1140, timeZone: "America/New_York", running: 1, stopped: 0, instanceType: "g4dn.xlarge")
        #expect(!office.isActive(at: try utc("2026-03-06T13:29:00Z")))  // Fri 08:29 EST
        #expect(office.isActive(at: try utc("2026-03-06T13:30:00Z")))  // Fri 08:30 EST
        #expect(!office.isActive(at: try utc("2026-03-09T12:29:00Z")))  // Mon 08:29 EDT
        #expect(office.isActive(at: try utc("2026-03-09T12:30:00Z")))  // Mon 08:30 EDT (13:30 UTC the week before)
        #expect(office.isActive(at: try utc("2026-03-09T22:59:00Z")))  // Mon 18:59 EDT
        #expect(!office.isActive(at: try utc("2026-03-09T23:00:00Z")))  // Mon 19:00 EDT
        // A window across the change itself: 01:00-04:00 on the wall clock is two real hours.
        let night = WarmSchedule(days: [7], from: 60, to: 240, timeZone: "America/New_York", running: 1, stopped: 0, instanceType: "g4dn.xlarge")
        #expect(!night.isActive(at: try utc("2026-03-08T05:59:00Z")))  // 00:59 EST
        #expect(night.isActive(at: try utc("2026-03-08T06:59:00Z")))  // 01:59 EST
        #expect(night.isActive(at: try utc("2026-03-08T07:00:00Z")))  // 03:00 EDT
        #expect(!night.isActive(at: try utc("2026-03-08T08:00:00Z")))  // 04:00 EDT
    }
}
