import BerthSimulation
import Testing

@Suite struct TraceTests {
    static let header = "arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu,memory_gib"

    @Test func readsRowsInArrivalOrder() throws {
        let trace = try Trace.parse(csv: """
            \(Self.header)
            600,3600,jhub,jupyter-b,notebook,1,a10g,2,8
            0,120.5,airflow,task-1,job,0,,0.5,1
            """)
        #expect(trace.pods.map(\.name) == ["task-1", "jupyter-b"])
        #expect(trace.pods[0].duration == 120.5)
        #expect(trace.pods[1].gpuType == "a10g")
        #expect(trace.gpuPods == 1)
        #expect(trace.gpuHours == 1)
        #expect(trace.horizon == 4_200)
    }

    @Test func columnsByNameAndTheOptionalTolerateAll() throws {
        let trace = try Trace.parse(csv: """
            name,namespace,arrival_s,duration_s,kind,gpus,gpu_type,cpu,memory_gib,tolerate_all
            task-1,airflow,5,60,job,0,,1,2,true\r
            task-2,airflow,6,60,job,0,,1,2,\r
            """)
        #expect(trace.pods.map(\.toleratesAll) == [true, false])
        #expect(trace.pods[0].arrival == 5)
    }

    @Test func csvRoundTrips() throws {
        let trace = try TraceGenerator(days: 1, users: 4, seed: 3).generate()
        #expect(try Trace.parse(csv: trace.csv()) == trace)
    }

    @Test(arguments: [
        ("", 1, "header", "empty"),
        ("arrival_s,duration_s,namespace,name,kind,gpus,gpu_type,cpu\n", 1, "memory_gib", "required column missing"),
        ("\(header),colour\n", 1, "colour", "unknown column"),
        ("\(header)\n0,60,jhub,a,notebook,1,,2,8\n0,sixty,jhub,b,notebook,1,,2,8\n", 3, "duration_s", "\"sixty\" is not a number"),
        ("\(header)\n-5,60,jhub,a,notebook,1,,2,8\n", 2, "arrival_s", "must be at least 0"),
        ("\(header)\n0,60,jhub,a,notebook,1,,2\n", 2, "row", "has 8 fields, the header has 9"),
        ("\(header)\n0,60,jhub,a,pipeline,1,,2,8\n", 2, "kind", "not one of notebook, job, service"),
        ("\(header)\n0,60,jhub,a,notebook,1.5,,2,8\n", 2, "gpus", "whole number"),
        ("\(header)\n0,60,jhub,a,notebook,0,t4,2,8\n", 2, "gpu_type", "0 gpus"),
        ("\(header)\n0,60,jhub,Alice,notebook,1,,2,8\n", 2, "name", "not a DNS label"),
        ("\(header)\n0,60,jhub,a,notebook,1,,2,8\n\n1,60,jhub,a,notebook,1,,2,8\n", 4, "name", "appears twice"),
    ])
    func badInputNamesLineAndField(text: String, line: Int, field: String, message: String) {
        do {
            _ = try Trace.parse(csv: text, source: "t.csv")
            Issue.record("accepted: \(text)")
        } catch let SimulationError.badTrace(source, foundLine, foundField, foundMessage) {
            #expect(source == "t.csv")
            #expect(foundLine == line)
            #expect(foundField == field)
            #expect(foundMessage.contains(message), "\(foundMessage)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Suite struct TraceGeneratorTests {
    @Test func sameSeedSameTraceOtherSeedOther() throws {
        let a = try TraceGenerator(days: 3, users: 10, seed: 42).generate()
        let b = try TraceGenerator(days: 3, users: 10, seed: 42).generate()
        let c = try TraceGenerator(days: 3, users: 10, seed: 43).generate()
        #expect(a.csv() == b.csv())
        #expect(a.csv() != c.csv())
    }

    @Test func workingDaysWeekendsAndTheMix() throws {
        let trace = try TraceGenerator(days: 14, users: 40, seed: 1).generate()
        // ≈ 4,000 pods for 14 days and 40 users (the benchmark's shape).
        #expect(trace.pods.count > 3_000 && trace.pods.count < 5_000)
        let notebooks = trace.pods.filter { $0.kind == .notebook }
        func day(_ pod: TracePod) -> Int { Int(pod.arrival / 86_400) % 7 }
        func hour(_ pod: TracePod) -> Int { Int(pod.arrival.truncatingRemainder(dividingBy: 86_400) / 3_600) }
        let weekday = notebooks.filter { day($0) < 5 }.count, weekend = notebooks.count - weekday
        #expect(Double(weekend) / 4 < Double(weekday) / 10 / 5)  // a weekend day sees < a fifth of a working day
        let office = notebooks.filter { (9..<12).contains(hour($0)) }.count / 3
        let lunch = notebooks.filter { hour($0) == 12 }.count
        let night = notebooks.filter { hour($0) < 6 }.count / 6
        #expect(lunch < office / 2 && night < office / 10)
        // Sessions from minutes to a working day, mostly one GPU, some A10G, a few multi-GPU jobs.
        #expect(notebooks.map(\.duration).min() ?? 0 <= 600 && notebooks.map(\.duration).max() ?? 0 >= 6 * 3_600)
        let gpu = trace.pods.filter(\.isGPU)
        #expect(gpu.filter { $0.gpus == 1 }.count > gpu.count * 9 / 10)
        #expect(gpu.contains { $0.gpuType == "a10g" } && gpu.contains { $0.gpus == 4 } && gpu.contains { $0.gpus == 2 })
        // Airflow around the clock, some tolerating every taint.
        let airflow = trace.pods.filter { $0.namespace == "airflow" }
        #expect(airflow.allSatisfy { !$0.isGPU })
        #expect(Set(airflow.map(hour)).count == 24)
        let tolerating = airflow.filter(\.toleratesAll).count
        #expect(tolerating > airflow.count / 5 && tolerating < airflow.count / 2)
    }

    @Test func rejectsOptionsOutOfRange() {
        #expect(throws: SimulationError.badOption(name: "--days", message: "must be from 1 to 366, found 0")) { try TraceGenerator(days: 0, users: 1, seed: 1) }
        #expect(throws: SimulationError.self) { try TraceGenerator(days: 1, users: 0, seed: 1) }
    }
}
