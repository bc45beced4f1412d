import BerthModel
import Testing

@Suite struct QuantityTests {
    @Test(arguments: [
        ("500m", 500), ("2", 2000), ("1.5", 1500), ("0.1", 100), (".5", 500), ("1e3", 1_000_000), ("1E-3", 1),
        ("8Gi", 8 * 1024 * 1024 * 1024 * 1000), ("16G", 16_000_000_000_000), ("100Ki", 102_400_000), ("1.5Gi", 1_610_612_736_000),
        ("1n", 1), ("1001u", 2), ("+3k", 3_000_000), ("-2", -2000), ("0", 0), ("0.0001Ki", 103)
    ] as [(String, Int64)])
    func parsesExactlyToThousandths(text: String, milli: Int64) throws {
        #expect(try Quantity.parse(text).milli == milli)
    }

    @Test(arguments: ["", "Gi", "1.2.3", "1Gb", "abc", "1e", "12 Mi", "1 "])
    func malformedQuantitiesNameTheValue(text: String) {
        #expect {
            try Quantity.parse(text)
        } throws: { error in
            (error as? QuantityError)?.value == text
        }
    }

    @Test func overflowIsReportedNotWrapped() throws {
        // 2^60 bytes in thousandths does not fit 64 bits.
        #expect(throws: QuantityError(value: "1Ei", reason: "too large")) { try Quantity.parse("1Ei") }
        #expect(try Quantity.parse("1Pi").value == 1 << 50)
    }

    @Test func memoryRoundsUpToWholeBytes() throws {
        #expect(try Quantity.parse("8G").value == 8_000_000_000)
        #expect(try Quantity.parse("1.5").value == 2)
        #expect(try Quantity.parse("100Ki").value == 102_400)
    }
}
