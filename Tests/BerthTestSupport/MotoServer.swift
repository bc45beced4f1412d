import Foundation
import Glibc
import Synchronization

/// A `moto` server (PyPI `moto[server]`: a fake of the AWS APIs) on 127.0.0.1 with signature
/// checking on: the first `INITIAL_NO_AUTH_ACTION_COUNT` calls create an IAM user with an access
/// key, an allow-all policy, and a role with it; every later call must be signed with that key (or
/// with credentials assumed from the role). One server per suite: start it in a suite-wide scope
/// and `stop()` it after. If the test process dies first, moto sees its stdin close and exits.
public final class MotoServer: Sendable {
    public let port: Int
    public let accessKeyID: String
    public let secretAccessKey: String
    /// The role web-identity tests assume (allow-all policy attached).
    public let roleARN: String
    private let process: Mutex<Process?>
    private let stdin: Mutex<Pipe?>

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Whether moto's server can be imported (CI installs it; without it the moto suites are skipped).
    public static let isAvailable: Bool = {
        (try? run("python3", ["-c", "import moto.server, werkzeug"], timeout: .seconds(60)).status) == 0
    }()

    public static let skipMessage = "moto is not installed (pip install 'moto[server]'); the EC2-against-moto tests need it"

    /// Starts moto and creates the IAM user, key, policy and role.
    public static func start() throws -> MotoServer {
        let port = try freePort()
        // The wrapper exits when its stdin closes (the test process is gone), so no moto outlives the tests.
        let wrapper = """
            import os, sys, threading
            def watch():
                sys.stdin.read()
                os._exit(0)
            threading.Thread(target=watch, daemon=True).start()
            \(publicParametersPatch)
            from moto.server import main
            main(["-H", "127.0.0.1", "-p", "\(port)"])
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", wrapper]
        var environment = ProcessInfo.processInfo.environment
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = String(bootstrapCalls)
        environment["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
        process.environment = environment
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        let log = NSTemporaryDirectory() + "berth-moto-\(getpid())-\(port).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        func abandon(_ message: String) -> TestFailure {
            try? input.fileHandleForWriting.close()
            if !waitUntil(timeout: .seconds(10), { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
            return TestFailure(message)
        }
        // A TCP connect, not an HTTP request: every request before the key exists spends one of
        // the unauthenticated calls.
        guard waitUntil(timeout: .seconds(60), { !process.isRunning || canConnect(port: port) }), process.isRunning else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw abandon("moto did not start on port \(port): \(text.suffix(2000))")
        }
        let bootstrap = try run("python3", ["-c", bootstrapScript, "http://127.0.0.1:\(port)"], timeout: .seconds(60))
        let lines = bootstrap.stdout.split(separator: "\n").map(String.init)
        guard bootstrap.status == 0, lines.count == 3 else {
            throw abandon("moto IAM bootstrap failed: \(bootstrap.stdout) \(bootstrap.stderr)")
        }
        return MotoServer(port: port, accessKeyID: lines[0], secretAccessKey: lines[1], roleARN: lines[2], process: process, stdin: input)
    }

    private init(port: Int, accessKeyID: String, secretAccessKey: String, roleARN: String, process: Process, stdin: Pipe) {
        self.port = port
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.roleARN = roleARN
        self.process = Mutex(process)
        self.stdin = Mutex(stdin)
    }

    /// Lets the next `count` calls through unsigned (AWS's own STS AssumeRoleWithWebIdentity is
    /// unsigned; moto checks every call once signature checking is on).
    public func allowUnsignedCalls(_ count: Int) throws {
        let result = try run("curl", ["-sf", "-X", "POST", "-H", "Content-Type: text/plain", "--data", String(count), endpoint + "/moto-api/reset-auth"])
        guard result.status == 0 else { throw TestFailure("moto reset-auth failed: \(result.stderr)") }
    }

    /// Ends moto and waits for it. Closing its stdin makes the wrapper `os._exit` at once (a
    /// SIGTERM would wait for moto's threads serving idle keep-alive connections); SIGKILL if not.
    public func stop() {
        guard let process = process.withLock({ $0.take() }) else { return }
        try? stdin.withLock { $0.take() }?.fileHandleForWriting.close()
        if !waitUntil(timeout: .seconds(10), { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            _ = waitUntil(timeout: .seconds(10), { !process.isRunning })
        }
    }

    static let bootstrapCalls = 6

    /// SSM public parameters AWS publishes for the EKS-optimised AMIs (Kubernetes 1.31), which moto
    /// does not ship (it has the ECS ones) and refuses to create (`/aws` names are reserved): loaded
    /// into every region's parameter store the way moto loads its own public ones.
    public static let publicParameters: [String: String] = {
        var parameters: [String: String] = [:]
        for (index, arch) in ["x86_64", "arm64"].enumerated() {
            for (variantIndex, variant) in ["nvidia", "standard"].enumerated() {
                let suffix = "\(index)\(variantIndex)"
                parameters["/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/\(arch)/\(variant)/recommended/image_id"] = "ami-0a1202300000000\(suffix)"
                parameters["/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/\(arch)/\(variant)/amazon-eks-node-al2023-\(arch)-\(variant)-1.31-v20251120/image_id"] = "ami-0a1202311200000\(suffix)"
                let bottlerocket = variant == "nvidia" ? "aws-k8s-1.31-nvidia" : "aws-k8s-1.31"
                parameters["/aws/service/bottlerocket/\(bottlerocket)/\(arch)/latest/image_id"] = "ami-0b0770c4e700000\(suffix)"
            }
        }
        return parameters
    }()

    static var publicParametersPatch: String {
        let json = String(decoding: (try? JSONSerialization.data(withJSONObject: publicParameters)) ?? Data(), as: UTF8.self)
        let literal = json.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        return [
            "import json as _json",
            "from moto.ssm import models as _ssm",
            "_public = _json.loads('\(literal)')",
            "_original = _ssm.ParameterDict._check_loading_status",
            "def _check(self, key):",
            "    _original(self, key)",
            "    if str(key or '').startswith('/aws/service/') and not getattr(self, 'berth_public_loaded', False):",
            "        self.berth_public_loaded = True",
            "        for name, value in _public.items():",
            "            dict.setdefault(self, self.normalize_name(name), []).append(_ssm.Parameter(account_id=self.account_id, name=name, value=value,",
            "                parameter_type='String', description=None, allowed_pattern=None, keyid=None,",
            "                last_modified_date=1764547200.0, version=1, data_type='aws:ec2:image'))",
            "_ssm.ParameterDict._check_loading_status = _check",
        ].joined(separator: "\n")
    }

    static let bootstrapScript = """
        import re, sys, json, urllib.parse, urllib.request
        base = sys.argv[1]
        def call(params):
            data = urllib.parse.urlencode(dict(params, Version="2010-05-08")).encode()
            request = urllib.request.Request(base + "/", data=data, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"})
            return urllib.request.urlopen(request).read().decode()
        def field(text, name):
            return re.search("<%s>([^<]*)</%s>" % (name, name), text).group(1)
        allow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/TEST"}, "Action": "sts:AssumeRoleWithWebIdentity"}]})
        call({"Action": "CreateUser", "UserName": "berth"})
        key = call({"Action": "CreateAccessKey", "UserName": "berth"})
        policy = field(call({"Action": "CreatePolicy", "PolicyName": "allow-all", "PolicyDocument": allow}), "Arn")
        call({"Action": "AttachUserPolicy", "UserName": "berth", "PolicyArn": policy})
        role = field(call({"Action": "CreateRole", "RoleName": "berth-irsa", "AssumeRolePolicyDocument": trust}), "Arn")
        call({"Action": "AttachRolePolicy", "RoleName": "berth-irsa", "PolicyArn": policy})
        print(field(key, "AccessKeyId")); print(field(key, "SecretAccessKey")); print(role)
        """

    /// A port nothing listens on right now (the kernel's choice for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw TestFailure("bind: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard named == 0 else { throw TestFailure("getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
