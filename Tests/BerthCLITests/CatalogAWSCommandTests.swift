import BerthTestSupport
import Foundation
import Testing

/// One moto server for the suite (see BerthAWSTests' MotoScope), and a Price List stub that takes
/// moto's key.
struct CLIMotoScope: SuiteTrait, TestScoping {
    @TaskLocal static var current: MotoServer?
    @TaskLocal static var prices: PriceListStub?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let moto = try MotoServer.start()
        defer { moto.stop() }
        let prices = try PriceListStub.start(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        defer { prices.stop() }
        try await Self.$current.withValue(moto) { try await Self.$prices.withValue(prices) { try await function() } }
    }
}

/// `berth catalog --cloud aws` as a user runs it, against moto with signature checking on.
@Suite(.enabled(if: MotoServer.isAvailable, Comment(rawValue: MotoServer.skipMessage)), CLIMotoScope())
struct CatalogAWSCommandTests {
    var moto: MotoServer { CLIMotoScope.current! }

    /// The built binary with only these variables in its environment (the Price List at the stub).
    func berth(_ arguments: [String], secret: String? = nil, pricing: String? = nil) throws -> CommandResult {
        try run("/usr/bin/env", [
            "-i", "HOME=/nonexistent", "AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=\(moto.accessKeyID)",
            "AWS_SECRET_ACCESS_KEY=\(secret ?? moto.secretAccessKey)", "AWS_ENDPOINT_URL_PRICING=\(pricing ?? CLIMotoScope.prices!.endpoint)",
            Repository.berthBinary,
        ] + arguments, timeout: .seconds(120))
    }

    /// Seoul's prices from the Price List; with it down, us-east-1's built-in ones and a warning on
    /// stderr naming the region (the catalog is still printed, exit 0).
    @Test func seoulPricesFromThePriceListElseAWarning() throws {
        let result = try berth(["catalog", "--cloud", "aws", "--region", "ap-northeast-2", "--endpoint", moto.endpoint, "-o", "json"])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let price = { (name: String) in (list.first { $0["name"] as? String == name }?["pricePerHour"] as? NSNumber)?.doubleValue }
        #expect(price("g4dn.xlarge") == PriceListStub.seoul["g4dn.xlarge"])
        #expect(price("g5.xlarge") == PriceListStub.seoul["g5.xlarge"])
        #expect(price("g5g.xlarge") == PriceListStub.seoul["g5g.xlarge"])
        #expect(price("g6.xlarge") == nil, "Seoul's list has no g6.xlarge price")

        let down = try PriceListStub.start(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        down.stop()
        let fallback = try berth(["catalog", "--cloud", "aws", "--region", "ap-northeast-2", "--endpoint", moto.endpoint], pricing: down.endpoint)
        #expect(fallback.status == 0)
        #expect(fallback.stderr.hasPrefix("berth: warning: the AWS Price List could not be read (GetProducts: no answer from \(down.endpoint)"), "\(fallback.stderr)")
        #expect(fallback.stderr.hasSuffix("on-demand prices are us-east-1's (the built-in table), not ap-northeast-2's\n"))
        #expect(fallback.stderr.split(separator: "\n").count == 1)
        #expect(fallback.stdout.contains("0.526"))
    }

    @Test func jsonIsTheBuiltInShapeWithUnknownPricesMarked() throws {
        let result = try berth(["catalog", "--cloud", "aws", "--region", "us-east-1", "--endpoint", moto.endpoint, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let g4dn = try #require(list.first { $0["name"] as? String == "g4dn.xlarge" })
        #expect(Set(g4dn.keys) == ["name", "gpus", "gpuName", "gpuMemoryMiB", "vcpu", "memoryMiB", "arch", "pricePerHour"])
        #expect(g4dn["gpuName"] as? String == "t4")
        #expect((g4dn["gpus"] as? NSNumber)?.intValue == 1)
        #expect((g4dn["gpuMemoryMiB"] as? NSNumber)?.intValue == 16384)
        #expect((g4dn["vcpu"] as? NSNumber)?.intValue == 4)
        #expect((g4dn["pricePerHour"] as? NSNumber)?.doubleValue == 0.526)
        let unpriced = try #require(list.first { $0["name"] as? String == "g4ad.xlarge" })
        #expect(unpriced["pricePerHour"] is NSNull)
        #expect((unpriced["note"] as? String)?.contains("no known on-demand price") == true)
        #expect(list.allSatisfy { (($0["gpus"] as? NSNumber)?.intValue ?? 0) > 0 })

        let table = try berth(["catalog", "--cloud", "aws", "--endpoint", moto.endpoint])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.hasPrefix("NAME "))
        #expect(table.stdout.contains("g4ad.xlarge") && table.stdout.contains("unknown"))
    }

    @Test func pricesFileOverridesTheTable() throws {
        let file = NSTemporaryDirectory() + "berth-prices-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try #"[{"name": "g4ad.xlarge", "pricePerHour": 0.379}, {"name": "g4dn.xlarge", "pricePerHour": 0.6}, {"name": "x", "pricePerHour": null}]"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try berth(["catalog", "--cloud", "aws", "--endpoint", moto.endpoint, "--prices", file, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let price = { (name: String) in (list.first { $0["name"] as? String == name }?["pricePerHour"] as? NSNumber)?.doubleValue }
        #expect(price("g4ad.xlarge") == 0.379)
        #expect(price("g4dn.xlarge") == 0.6)
        #expect(price("g5.xlarge") == 1.006, "the built-in table for the rest")

        try #"[{"name": "g4dn.xlarge", "pricePerHour": "cheap"}]"#.write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try berth(["catalog", "--cloud", "aws", "--endpoint", moto.endpoint, "--prices", file])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("berth: prices \(file): [0].pricePerHour: expected a number"), "\(bad.stderr)")
        #expect(bad.stderr.split(separator: "\n").count == 1)
    }

    @Test func badCredentialsExitNonZeroWithAWSsCodeInOneLine() throws {
        let result = try berth(["catalog", "--cloud", "aws", "--endpoint", moto.endpoint, "-o", "json"], secret: "wrong-secret-value")
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(result.stderr.hasPrefix("berth: catalog --cloud aws: DescribeInstanceTypes: AuthFailure: AWS was not able to validate the provided access credentials"))
        #expect(!result.stderr.contains("wrong-secret-value"))
    }

    @Test func plainHTTPOnlyToLoopback() throws {
        let result = try berth(["catalog", "--cloud", "aws", "--endpoint", "http://ec2.example.com"])
        #expect(result.status == 1)
        #expect(result.stderr == "berth: catalog --cloud aws: EC2 endpoint http://ec2.example.com: plain http is allowed only to loopback addresses\n")
    }

    /// `berth check --cloud aws`: a table with a verdict per line; exit 0 when a launch would
    /// work, 1 when, say, no subnet carries the discovery tag.
    @Test func checkPrintsTheTableAndFailsWithoutDiscoveredSubnets() throws {
        let world = try EKSWorld.make(moto, cluster: "check-ml", serviceCIDR: "172.20.0.0/16")
        let file = NSTemporaryDirectory() + "berth-check-\(getpid()).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        func config(_ cluster: String) throws {
            try """
                apiVersion: berth.dev/v1alpha1
                kind: BerthConfig
                provisioner:
                  clusterName: \(cluster)
                  pools: [{name: gpu, nodeClass: gpu}]
                  nodeClasses:
                    gpu: {amiSelector: [{alias: al2023@latest}], instanceProfile: \(world.instanceProfile)}
                  aws:
                    region: us-east-1
                    eksCluster: {name: \(cluster), endpoint: "https://ABC.gr7.us-east-1.eks.amazonaws.com", certificateAuthority: Q0E=, serviceCIDR: 172.20.0.0/16, version: "1.31"}
                """.write(toFile: file, atomically: true, encoding: .utf8)
        }
        func check() throws -> CommandResult {
            try run("/usr/bin/env", [
                "-i", "HOME=/nonexistent", "AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=\(moto.accessKeyID)",
                "AWS_SECRET_ACCESS_KEY=\(moto.secretAccessKey)", "AWS_ENDPOINT_URL=\(moto.endpoint)",
                "AWS_ENDPOINT_URL_PRICING=\(CLIMotoScope.prices!.endpoint)", Repository.berthBinary, "check", "--cloud", "aws", "--config", file,
            ], timeout: .seconds(120))
        }
        try config(world.cluster)
        let good = try check()
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        let lines = good.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("CHECK") == true)
        func line(_ check: String) -> String? { lines.first { $0.hasPrefix(check + " ") } }
        #expect(line("credentials")?.contains("OK") == true && line("region")?.contains("us-east-1") == true)
        #expect(line("EC2 instance types")?.contains(" OK ") == true)
        #expect(line("EKS cluster")?.contains("DNS 172.20.0.10") == true)
        #expect(line("node class gpu: subnets")?.contains(world.bestSubnets["us-east-1a"]!) == true)
        #expect(line("node class gpu: security groups")?.contains(world.securityGroup) == true)
        #expect(line("node class gpu: AMIs (GPU)")?.contains(MotoServer.publicParameters[
            "/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id"]!) == true)
        #expect(line("interruption queue")?.contains("WARN") == true)
        // moto has the profile and its role but no EKS access entries: said, not failed.
        #expect(line("node class gpu: node role")?.contains("WARN") == true && line("node class gpu: node role")?.contains("check-ml-node") == true,
                "\(good.stdout)")

        try config("nobody-tagged-for-this")
        let bad = try check()
        #expect(bad.status == 1)
        let subnets = bad.stdout.split(separator: "\n").first { $0.hasPrefix("node class gpu: subnets") }
        #expect(subnets?.contains("FAIL") == true && subnets?.contains("no subnet matches subnetSelector") == true, "\(bad.stdout)")
    }
}
