// KafkaConfiguration: librdkafka properties as plain strings, merged from defaults, environment
// (`PARATOOL_KAFKA_*`) and `-X key=value` flags, so anything librdkafka supports (SASL, SSL, …)
// passes through unchanged.
import CRdKafka
import Foundation

/// The librdkafka properties of one client (`bootstrap.servers`, `security.protocol`, …).
public struct KafkaConfiguration: Sendable, Equatable {
    /// Property name → value, exactly as librdkafka's CONFIGURATION.md names them.
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

    /// Builds an `rd_kafka_conf_t`, reporting the first property librdkafka rejects by name.
    /// The caller owns the result (it passes to `rd_kafka_new`).
    func makeConf() throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError.invalid("rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.invalid("Kafka property \(key)=\(redacted(key, value)): \(string(fromBuffer: errstr))")
            }
        }
        return conf
    }

    /// Secrets never appear in errors or logs.
    func redacted(_ key: String, _ value: String) -> String {
        key.contains("password") || key.contains("secret") || key.hasSuffix(".key.pem") ? "<redacted>" : value
    }
}
