// HealthServer: GET /metrics (Prometheus text) and GET /healthz (200 when ready, 503 otherwise)
// on a configurable address (default 127.0.0.1: this host only) and port, served by FlyingFox; a
// `Service` that stops listening on graceful shutdown (put it first in the group: it is then the
// last to stop).
import FlyingFox
import Foundation
import Logging
import ServiceLifecycle

/// The operations endpoint of a worker or trainer.
public final class HealthServer: Service, Sendable {
    private let server: HTTPServer
    /// The address listened on.
    public let host: String
    private let logger: Logger

    /// The address the endpoint listens on unless told otherwise: this host only. A deployment
    /// that scrapes or probes it from outside passes `0.0.0.0` (or an interface's address).
    public static let defaultHost = "127.0.0.1"

    /// A server for `host:port`, `host` an IPv4 address (port 0 picks a free one; see `port()`);
    /// `run()` serves.
    public init(host: String = HealthServer.defaultHost, port: UInt16, metrics: ServiceMetrics,
                isReady: @escaping @Sendable () -> Bool, logger: Logger) throws {
        server = HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
        self.host = host
        self.logger = logger
        self.metrics = metrics
        self.isReady = isReady
    }

    private let metrics: ServiceMetrics
    private let isReady: @Sendable () -> Bool

    public func run() async throws {
        let (metrics, isReady) = (metrics, isReady)
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: Data(metrics.exposition().utf8))
        }
        await server.appendRoute("GET /healthz") { _ in
            let ok = isReady()
            return HTTPResponse(statusCode: ok ? .ok : .serviceUnavailable,
                                headers: [.contentType: "text/plain; charset=utf-8"],
                                body: Data((ok ? "ok\n" : "not ready\n").utf8))
        }
        let logged = Task { [server, logger, host] in
            guard (try? await server.waitUntilListening(timeout: 10)) != nil else { return }
            if case .ip4(_, let port) = await server.listeningAddress {
                logger.info("serving /metrics and /healthz", metadata: ["host": "\(host)", "port": "\(port)"])
            }
        }
        defer { logged.cancel() }
        do {
            try await withGracefulShutdownHandler {
                try await server.run()
            } onGracefulShutdown: { [server] in
                Task { await server.stop(timeout: 1) }
            }
        } catch {
            // Stopping the server ends `run` with a socket error: that is the orderly end.
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            throw error
        }
    }

    /// The port listened on, once listening (within `timeout`).
    public func port(timeout: TimeInterval = 10) async throws -> UInt16 {
        try await server.waitUntilListening(timeout: timeout)
        if case .ip4(_, let port) = await server.listeningAddress { return port }
        return 0
    }
}
