// KafkaConfiguration: what every client of one cluster shares — the bootstrap servers and the
// operator's librdkafka properties, merged from the environment (`PARATOOL_KAFKA_*`) and
// `-X key=value` flags, so anything librdkafka supports (SASL, SSL, …) passes through unchanged.
// Each client passes on only the properties librdkafka's own table gives its role (see
// `KafkaClientRole`); the typed per-role settings are in KafkaClientConfigurations.swift.
import CRdKafka
import Foundation

/// The connection settings every client of one cluster shares: the bootstrap servers and any
/// librdkafka property by name (`security.protocol`, `sasl.username`, `session.timeout.ms`, …).
public struct KafkaConfiguration: Sendable, Equatable {
    /// Property name → value, exactly as librdkafka's CONFIGURATION.md names them. A consumer
    /// receives the global and consumer properties among them, a producer the global and producer
    /// ones (so `session.timeout.ms` reaches the consumers without a warning from every producer).
    public var properties: [String: String]

    /// A configuration for the given bootstrap servers plus any extra properties.
    public init(brokers: String, properties: [String: String] = [:]) {
        self.properties = properties
        self.properties["bootstrap.servers"] = brokers
    }

    /// The bootstrap servers.
    public var brokers: String { properties["bootstrap.servers"] ?? "" }

    /// The environment prefix that maps to librdkafka properties.
    public static let environmentPrefix = "PARATOOL_KAFKA_"

    /// Properties from environment variables: `PARATOOL_KAFKA_SASL_USERNAME=u` → `sasl.username=u`
    /// (after the prefix, `_` becomes `.` and letters are lowercased).
    public static func properties(fromEnvironment environment: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in environment where key.hasPrefix(environmentPrefix) && key.count > environmentPrefix.count {
            let name = key.dropFirst(environmentPrefix.count).lowercased().replacingOccurrences(of: "_", with: ".")
            result[name] = value
        }
        return result
    }

    /// Parses `key=value` assignments (the `-X` flag); the value may contain `=`.
    public static func properties(fromAssignments assignments: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for assignment in assignments {
            guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                throw KafkaError.invalid("expected key=value for a Kafka property, got \"\(assignment)\"")
            }
            result[String(assignment[..<eq]).trimmingCharacters(in: .whitespaces)] = String(assignment[assignment.index(after: eq)...])
        }
        return result
    }

    /// Adds `other`'s properties, replacing existing ones.
    public func merging(_ other: [String: String]) -> KafkaConfiguration {
        var copy = self
        copy.properties.merge(other) { _, new in new }
        return copy
    }

    /// The properties that apply to a client of `role`, by librdkafka's table; a name librdkafka
    /// does not know is kept, so that creating the client reports it.
    public func properties(for role: KafkaClientRole) -> [String: String] {
        properties.filter { key, _ in KafkaClientRole.of(property: key).map { $0 == .any || $0 == role } ?? true }
    }
}

/// Which kind of client a librdkafka property applies to (the C/P column of its CONFIGURATION.md).
public enum KafkaClientRole: Sendable, Equatable {
    case consumer, producer
    /// Both kinds (`*`).
    case any

    /// The role of a property as this librdkafka build documents it; nil for an unknown name.
    public static func of(property name: String) -> KafkaClientRole? { table[name] }

    /// Parsed once from `rd_kafka_conf_properties_show`, the table CONFIGURATION.md is made from.
    /// A name listed under both roles (a topic property, say) applies to any.
    private static let table: [String: KafkaClientRole] = {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { return [:] }
        rd_kafka_conf_properties_show(stream)
        fclose(stream)
        defer { free(buffer) }
        guard let buffer else { return [:] }
        var roles: [String: KafkaClientRole] = [:]
        for line in String(cString: buffer).split(separator: "\n") {
            let cells = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard cells.count == 3 else { continue }
            let name = cells[0].trimmingCharacters(in: .whitespaces)
            let role: KafkaClientRole
            switch cells[1].trimmingCharacters(in: .whitespaces) {
            case "C": role = .consumer
            case "P": role = .producer
            case "*": role = .any
            default: continue
            }
            roles[name] = roles[name].map { $0 == role ? role : .any } ?? role
        }
        return roles
    }()
}

extension [String: String] {
    /// Builds an `rd_kafka_conf_t` from these librdkafka properties, reporting the first one
    /// librdkafka rejects by name. The caller owns the result (it passes to `rd_kafka_new`).
    func makeConf() throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError.invalid("rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.invalid("Kafka property \(key)=\(Self.redacted(key, value)): \(string(fromBuffer: errstr))")
            }
        }
        return conf
    }

    /// Secrets never appear in errors or logs.
    static func redacted(_ key: String, _ value: String) -> String {
        key.contains("password") || key.contains("secret") || key.hasSuffix(".key.pem") ? "<redacted>" : value
    }
}
