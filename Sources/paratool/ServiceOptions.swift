// Settings shared by the service commands (serve, train --brokers, topics, send, up): Kafka
// connection and librdkafka pass-through, topic prefix, the limits on what the `tools` topic may
// hold and on what a trainer keeps, and the flag > environment > config-file resolution every
// service setting follows.
import ArgumentParser
import Foundation
import Kafka
import Logging
import ParaTool
import ParaToolService

struct KafkaOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Kafka bootstrap servers, host:port[,host:port…] (env PARATOOL_BROKERS).", valueName: "list"))
    var brokers: String?

    @Option(help: ArgumentHelp("Prefix of every topic name (env PARATOOL_TOPIC_PREFIX; default paratool.).", valueName: "prefix"))
    var topicPrefix: String?

    @Option(name: .customShort("X"), help: ArgumentHelp(
        "A librdkafka property (repeatable), e.g. -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN. Also from env PARATOOL_KAFKA_<KEY> (SASL_USERNAME → sasl.username).",
        valueName: "key=value"))
    var kafkaProperties: [String] = []

    @Option(help: ArgumentHelp(
        "Settings file: lines `key = value` whose keys are long flag names (brokers = kafka:9092, batch-size = 8, …); `#` starts a comment. A flag overrides the environment (PARATOOL_<FLAG>, e.g. PARATOOL_BATCH_SIZE), which overrides the file.",
        valueName: "file"))
    var config: String?

    /// The resolver for this invocation's settings.
    func settings() throws -> SettingsResolver {
        try SettingsResolver(configFile: config)
    }

    /// The librdkafka configuration: bootstrap servers, the file's and environment's properties, then -X.
    func kafkaConfiguration(_ settings: SettingsResolver, default defaultBrokers: String? = nil) throws -> KafkaConfiguration {
        guard let brokers = settings.string("brokers", brokers) ?? defaultBrokers else {
            throw UsageError("--brokers (or PARATOOL_BROKERS, or `brokers =` in --config) is required")
        }
        return KafkaConfiguration(brokers: brokers)
            .merging(settings.fileKafkaProperties)
            .merging(KafkaConfiguration.properties(fromEnvironment: ProcessInfo.processInfo.environment))
            .merging(try KafkaConfiguration.properties(fromAssignments: kafkaProperties))
    }

    func topics(_ settings: SettingsResolver) -> TopicNames {
        TopicNames(prefix: settings.string("topic-prefix", topicPrefix) ?? "paratool.")
    }
}

/// How much of the `tools` topic a worker or trainer keeps (`ToolTopicLimits`).
struct ToolLimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Most tools in the catalogue read from the tools topic; a spec of a new tool beyond it is refused and counted (default 10000).", valueName: "n"))
    var maxTools: Int?

    @Option(help: ArgumentHelp("Largest ToolSpec message read from the tools topic, in bytes; a larger one is refused and counted (default 65536).", valueName: "bytes"))
    var maxSpecBytes: Int?

    @Option(help: ArgumentHelp("Most alternatives (enum and const values, anyOf/oneOf members) one ToolSpec's schema may hold; each is compiled into the call grammar. More is refused and counted (default 1024).", valueName: "n"))
    var maxSchemaAlternatives: Int?

    @Option(help: ArgumentHelp("Most bytes of one ToolSpec schema's enum and const values; more is refused and counted (default 16384).", valueName: "bytes"))
    var maxSchemaLiteralBytes: Int?

    /// The limits from the flags, else `settings` (environment, config file), else the defaults.
    func limits(_ settings: SettingsResolver?) throws -> ToolTopicLimits {
        var limits = ToolTopicLimits.default
        if let n = try settings?.int("max-tools", maxTools) ?? maxTools {
            guard n >= 1 else { throw UsageError("--max-tools must be at least 1") }
            limits.maxTools = n
        }
        if let n = try settings?.int("max-spec-bytes", maxSpecBytes) ?? maxSpecBytes {
            guard n >= 1 else { throw UsageError("--max-spec-bytes must be at least 1") }
            limits.maxSpecBytes = n
        }
        if let n = try settings?.int("max-schema-alternatives", maxSchemaAlternatives) ?? maxSchemaAlternatives {
            guard n >= 1 else { throw UsageError("--max-schema-alternatives must be at least 1") }
            limits.maxAlternatives = n
        }
        if let n = try settings?.int("max-schema-literal-bytes", maxSchemaLiteralBytes) ?? maxSchemaLiteralBytes {
            guard n >= 1 else { throw UsageError("--max-schema-literal-bytes must be at least 1") }
            limits.maxLiteralBytes = n
        }
        return limits
    }

    /// Refuses a catalogue file whose specs are over `limits`' schema bounds, with the tool and
    /// the reason: the readers of the `tools` topic would refuse them one by one.
    static func check(_ catalogue: ToolCatalogue, _ limits: ToolTopicLimits) throws {
        for spec in catalogue.tools {
            if let reason = limits.complexityRefusal(spec) { throw UsageError("tool \(spec.name) in the catalogue: \(reason)") }
        }
    }
}

/// How much a trainer keeps on disk and in memory for what the topics bring (TrainerSettings).
struct TrainerLimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Most bytes of the trainer's dataset log; past it new episodes are refused, logged and counted (default 1073741824, 1 GiB).", valueName: "bytes"))
    var datasetMaxBytes: Int?

    @Option(help: ArgumentHelp("Most bytes the served candidates held for feedback may take, and the feedback waiting for its candidate as well; the oldest are pushed out and counted (default 268435456, 256 MiB).", valueName: "bytes"))
    var feedbackMaxBytes: Int?

    /// `settings` with the flags' limits (else the environment's or config file's, else the defaults).
    @Option(help: ArgumentHelp("Keep stored episodes, served candidates and waiting feedback this many days, then delete them (default: keep until the byte quotas push them out).", valueName: "days"))
    var retentionDays: Int?

    func apply(to trainer: inout TrainerSettings, _ settings: SettingsResolver?) throws {
        if let days = try settings?.int("retention-days", retentionDays) ?? retentionDays {
            guard days >= 1 else { throw UsageError("--retention-days must be at least 1") }
            trainer.retention = .seconds(86_400 * days)
        }
        if let n = try settings?.int("dataset-max-bytes", datasetMaxBytes) ?? datasetMaxBytes {
            guard n >= 1 else { throw UsageError("--dataset-max-bytes must be at least 1") }
            trainer.datasetMaxBytes = Int64(n)
        }
        if let n = try settings?.int("feedback-max-bytes", feedbackMaxBytes) ?? feedbackMaxBytes {
            guard n >= 1 else { throw UsageError("--feedback-max-bytes must be at least 1") }
            trainer.feedbackMaxBytes = n
        }
    }
}

/// Resolves a setting from its flag, else `PARATOOL_<KEY>` in the environment, else the config file.
struct SettingsResolver {
    let file: [String: String]
    let environment = ProcessInfo.processInfo.environment

    init(configFile: String?) throws {
        guard let configFile else {
            file = [:]
            return
        }
        let text: String
        do { text = try String(contentsOfFile: configFile, encoding: .utf8) } catch {
            throw UsageError("cannot read --config \(configFile): \(error.localizedDescription)")
        }
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw UsageError("\(configFile):\(number + 1): expected `key = value`, got \"\(trimmed)\"")
            }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
            values[key] = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        file = values
    }

    static func environmentName(_ key: String) -> String {
        "PARATOOL_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    func string(_ key: String, _ flag: String?) -> String? {
        flag ?? environment[Self.environmentName(key)].flatMap { $0.isEmpty ? nil : $0 } ?? file[key]
    }

    func int(_ key: String, _ flag: Int?) throws -> Int? {
        if let flag { return flag }
        guard let text = string(key, nil) else { return nil }
        guard let value = Int(text) else { throw UsageError("\(key) must be an integer, got \"\(text)\"") }
        return value
    }

    func bool(_ key: String, _ flag: Bool) throws -> Bool {
        if flag { return true }
        guard let text = string(key, nil)?.lowercased() else { return false }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: throw UsageError("\(key) must be true or false, got \"\(text)\"")
        }
    }

    /// `kafka.<property> = value` lines of the config file, as librdkafka properties.
    var fileKafkaProperties: [String: String] {
        var result: [String: String] = [:]
        for (key, value) in file where key.hasPrefix("kafka.") { result[String(key.dropFirst(6))] = value }
        return result
    }
}

/// A logger for the service commands: structured text on standard error at `level`.
func serviceLogger(_ label: String, level: String?) throws -> Logger {
    var logger = Logger(label: label)
    if let level {
        guard let parsed = Logger.Level(rawValue: level) else {
            throw UsageError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        logger.logLevel = parsed
    } else {
        logger.logLevel = .info
    }
    return logger
}
