import Foundation
import Glibc
import Synchronization

/// A local stand-in for the AWS Price List Query API (moto has none): `AWSPriceListService.GetProducts`
/// over JSON 1.1, every request's SigV4 signature checked with botocore against one key (service
/// `pricing`), `TERM_MATCH` filters applied to each product's attributes, `MaxResults`/`NextToken`
/// pages, and answers in the real `PriceList` shape — each product a JSON document in a string,
/// with OnDemand and Reserved terms. Its products: Seoul (`ap-northeast-2`) and us-east-1 Linux
/// prices, and decoys a missing filter would let through (Windows, dedicated tenancy, SQL Server
/// pre-installed, capacity reservations). A python3 child that exits when the test process does.
public final class PriceListStub: Sendable {
    public let port: Int
    private let process: Mutex<Process?>
    private let stdin: Mutex<Pipe?>

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Linux, shared tenancy, no pre-installed software, capacity status Used: what Berth must read.
    public static let seoul: [String: Double] = ["g4dn.xlarge": 0.647, "g5.xlarge": 1.258, "g5g.xlarge": 0.5078, "p5.48xlarge": 68.5]
    public static let usEast1: [String: Double] = ["g4dn.xlarge": 0.526, "g5.xlarge": 1.006]

    public static func start(accessKeyID: String, secretAccessKey: String) throws -> PriceListStub {
        let port = try MotoServer.freePort()
        var products: [[String: Any]] = []
        func add(_ type: String, _ region: String, _ price: Double, os: String = "Linux", tenancy: String = "Shared", software: String = "NA",
                 capacity: String = "Used") {
            products.append(["type": type, "regionCode": region, "operatingSystem": os, "tenancy": tenancy, "preInstalledSw": software,
                             "capacitystatus": capacity, "price": price])
        }
        for (type, price) in seoul { add(type, "ap-northeast-2", price) }
        for (type, price) in usEast1 { add(type, "us-east-1", price) }
        add("g4dn.xlarge", "ap-northeast-2", 0.831, os: "Windows")
        add("g4dn.xlarge", "ap-northeast-2", 0.712, tenancy: "Dedicated")
        add("g4dn.xlarge", "ap-northeast-2", 1.9, software: "SQL Web")
        add("g4dn.xlarge", "ap-northeast-2", 0.0001, capacity: "AllocatedCapacityReservation")
        add("g5.xlarge", "ap-northeast-2", 0.0002, capacity: "UnusedCapacityReservation")
        let data = try JSONSerialization.data(withJSONObject: products)
        let table = NSTemporaryDirectory() + "berth-pricelist-\(getpid())-\(port).json"
        try data.write(to: URL(fileURLWithPath: table))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, String(port), accessKeyID, secretAccessKey, table]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        let log = NSTemporaryDirectory() + "berth-pricelist-\(getpid())-\(port).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        guard waitUntil(timeout: .seconds(30), { !process.isRunning || MotoServer.canConnect(port: port) }), process.isRunning else {
            try? input.fileHandleForWriting.close()
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestFailure("the Price List stub did not start on port \(port): \(text.suffix(2000))")
        }
        return PriceListStub(port: port, process: process, stdin: input)
    }

    private init(port: Int, process: Process, stdin: Pipe) {
        self.port = port
        self.process = Mutex(process)
        self.stdin = Mutex(stdin)
    }

    /// Ends the stub (its port then refuses connections: "the Price List is down").
    public func stop() {
        guard let process = process.withLock({ $0.take() }) else { return }
        try? stdin.withLock { $0.take() }?.fileHandleForWriting.close()
        if !waitUntil(timeout: .seconds(10), { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            _ = waitUntil(timeout: .seconds(10), { !process.isRunning })
        }
    }

    static let script = #"""
        import json, os, sys, threading, hashlib
        from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        port, key, secret, table = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        products = json.load(open(table))

        def document(p):
            sku = hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:16].upper()
            attributes = {"instanceType": p["type"], "regionCode": p["regionCode"], "operatingSystem": p["operatingSystem"],
                          "tenancy": p["tenancy"], "preInstalledSw": p["preInstalledSw"], "capacitystatus": p["capacitystatus"],
                          "licenseModel": "No License required", "servicecode": "AmazonEC2", "operation": "RunInstances",
                          "usagetype": "BoxUsage:" + p["type"], "productFamily": "Compute Instance"}
            on_demand = {sku + ".JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
                "termAttributes": {}, "priceDimensions": {sku + ".JRTCKXETXF.6YS6EN2CT7": {
                    "unit": "Hrs", "beginRange": "0", "endRange": "Inf", "appliesTo": [], "rateCode": sku + ".JRTCKXETXF.6YS6EN2CT7",
                    "description": "$%s per On Demand %s %s Instance Hour" % (p["price"], p["operatingSystem"], p["type"]),
                    "pricePerUnit": {"USD": "%.10f" % p["price"]}}}}}
            reserved = {sku + ".4NA7Y494T4": {"offerTermCode": "4NA7Y494T4", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
                "termAttributes": {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"},
                "priceDimensions": {sku + ".4NA7Y494T4.6YS6EN2CT7": {"unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                    "appliesTo": [], "rateCode": sku + ".4NA7Y494T4.6YS6EN2CT7", "description": "reserved",
                    "pricePerUnit": {"USD": "%.10f" % (p["price"] * 0.6)}}}}}
            return json.dumps({"product": {"productFamily": "Compute Instance", "attributes": attributes, "sku": sku},
                               "serviceCode": "AmazonEC2", "terms": {"OnDemand": on_demand, "Reserved": reserved},
                               "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"})

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *args):
                pass
            def answer(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", "pricelist-stub")
                self.end_headers()
                self.wfile.write(body)
            def signed(self, body):
                auth = self.headers.get("Authorization", "")
                try:
                    akid, date, region, service, _ = auth.split("Credential=")[1].split(",")[0].split("/")
                    names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
                    request = AWSRequest(method="POST", url="http://%s%s" % (self.headers["Host"], self.path), data=body,
                                         headers={name: self.headers[name] for name in names})
                    request.context["timestamp"] = self.headers["X-Amz-Date"]
                    signer = SigV4Auth(Credentials(key, secret), service, region)
                    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
                    return akid == key and service == "pricing" and signature == auth.split("Signature=")[1].strip()
                except Exception:
                    return False
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not self.signed(body):
                    return self.answer(403, {"__type": "com.amazon.coral.service#InvalidSignatureException",
                                             "message": "The request signature we calculated does not match the signature you provided."})
                if self.headers.get("X-Amz-Target") != "AWSPriceListService.GetProducts":
                    return self.answer(400, {"__type": "com.amazon.coral.service#UnknownOperationException", "message": "unknown operation"})
                request = json.loads(body)
                if request.get("ServiceCode") != "AmazonEC2":
                    return self.answer(400, {"__type": "com.amazonaws.pricing#InvalidParameterException", "message": "unknown service code"})
                matches = [p for p in products if all(
                    f.get("Type") == "TERM_MATCH" and str(p.get("type" if f["Field"] == "instanceType" else f["Field"])) == f["Value"]
                    for f in request.get("Filters", []))]
                start = int(request.get("NextToken") or 0)
                size = int(request.get("MaxResults") or 100)
                page = matches[start:start + size]
                answer = {"FormatVersion": "aws_v1", "PriceList": [document(p) for p in page]}
                if start + size < len(matches):
                    answer["NextToken"] = str(start + size)
                self.answer(200, answer)

        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}
