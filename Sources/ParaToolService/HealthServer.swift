// HealthServer: GET /metrics (Prometheus text) and GET /healthz (200 when ready, 503 otherwise)
// on a configurable port, served by FlyingFox.
import FlyingFox
import Foundation
import Logging

/// The operations endpoint of a worker or trainer.
public final class HealthServer: Sendable {
    private let server: HTTPServer
    private let task: Task<Void, Never>

    /// Starts serving on `host:port` (port 0 picks a free one; see `port()`).
    public init(host: String = "0.0.0.0", port: UInt16, metrics: ServiceMetrics,
                isReady: @escaping @Sendable () -> Bool, logger: Logger) async throws {
        let server = HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
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
        self.server = server
        task = Task {
            do { try await server.run() } catch is CancellationError {} catch {
                logger.error("metrics server stopped: \(error)")
            }
        }
        try await server.waitUntilListening(timeout: 10)
        let bound = await self.port()
        logger.info("serving /metrics and /healthz", metadata: ["port": "\(bound)"])
    }

    /// The port actually listened on.
    public func port() async -> UInt16 {
        if case .ip4(_, let port) = await server.listeningAddress { return port }
        return 0
    }

    public func stop() async {
        await server.stop(timeout: 1)
        task.cancel()
    }
}
