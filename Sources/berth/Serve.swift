import ArgumentParser
import BerthAdmission
import BerthNet
import BerthWebhook
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the admission webhook (TLS) and its metrics port.",
        discussion: """
            POST /mutate answers AdmissionReviews (admission.k8s.io/v1 and v1beta1) on the TLS port;
            GET /healthz and /readyz answer on both ports; GET /metrics (Prometheus) on the metrics port.
            The certificate files are re-read every few seconds: a rotated certificate (including a
            Secret volume's ..data swap) is served without a restart; a bad new pair is logged and the
            old one kept. SIGTERM or SIGINT: stop accepting, answer in-flight requests, exit 0.
            Logs are JSON lines on stdout.
            """
    )

    @Option(help: "PEM certificate chain served on the TLS port.")
    var tlsCertFile: String

    @Option(help: "PEM private key of that certificate.")
    var tlsPrivateKeyFile: String

    @Option(help: "PEM CA bundle: when set, clients (the apiserver) must present a certificate it signed.")
    var clientCaFile: String?

    @Option(help: "TLS port for /mutate, /healthz, /readyz.")
    var port: Int = 8443

    @Option(help: "Plain-HTTP port for /metrics, /healthz, /readyz.")
    var metricsPort: Int = 8080

    @Option(help: "Address to listen on.")
    var bindAddress: String = "0.0.0.0"

    @Option(help: "A BerthConfig file (defaults apply without one).")
    var config: String?

    @Option(help: "Largest request body accepted, in bytes (at most 7 MiB); larger gets 413.")
    var maxBodyBytes: Int = 3 * 1024 * 1024

    @Option(help: "Seconds to finish in-flight requests after SIGTERM.")
    var shutdownTimeout: Int = 25

    @Option(help: "Log level: trace (also every connection), debug (one line per review), info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Run the admission webhook.")
    var webhook: Bool = true

    @Option(help: "Run the provisioning loop.")
    var provisioner: Bool = false

    func validate() throws {
        guard (1...WebhookServer.Configuration.maximumBodyBytes).contains(maxBodyBytes) else {
            throw ValidationError("--max-body-bytes must be between 1 and \(WebhookServer.Configuration.maximumBodyBytes) (7 MiB)")
        }
        guard (0...65535).contains(port), (0...65535).contains(metricsPort) else {
            throw ValidationError("--port and --metrics-port must be between 0 and 65535")
        }
        guard shutdownTimeout >= 0 else { throw ValidationError("--shutdown-timeout must not be negative") }
    }

    func run() throws {
        // Before any thread starts, so SIGTERM stays pending for the waiter below.
        blockTerminationSignals()
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: logLevel) }
        let logger = Logger(label: "berth")
        try failing {
            if provisioner {
                throw CLIError(message: "--provisioner=true: the provisioning loop is not part of this build yet; run with --provisioner=false")
            }
            guard webhook else { throw CLIError(message: "nothing to run: --webhook=false and --provisioner=false") }
            let settings = try ConfigFile.load(config)
            var tls = TLSServerConfiguration(certificateFile: tlsCertFile, privateKeyFile: tlsPrivateKeyFile)
            tls.clientCAFile = clientCaFile
            var configuration = WebhookServer.Configuration(tls: tls)
            configuration.host = bindAddress
            configuration.port = port
            configuration.metricsPort = metricsPort
            configuration.maxBodyBytes = maxBodyBytes
            let server: WebhookServer
            let ports: (port: Int, metricsPort: Int)
            do {
                server = try WebhookServer(configuration: configuration, config: settings, logger: logger)
                ports = try server.start()
            } catch {
                throw CLIError(message: "serve: \(error)")
            }
            logger.info("berth webhook serving", metadata: [
                "port": "\(ports.port)", "metricsPort": "\(ports.metricsPort)", "version": "\(BerthVersion.current)",
                "config": "\(config ?? "defaults")",
            ])
            let signal = waitForTerminationSignal()
            logger.info("shutting down", metadata: ["signal": "\(signal == 15 ? "SIGTERM" : "SIGINT")", "timeout": "\(shutdownTimeout)s"])
            let finished = server.shutdown(timeout: .seconds(shutdownTimeout))
            logger.info(finished ? "stopped: every request answered" : "stopped: shutdown timeout reached with requests in flight")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
