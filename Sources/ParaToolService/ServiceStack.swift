// ServiceStack: the composition root of the service, the one used by `serve`, `train --brokers`,
// `up` and the tests — a worker with its control listener, adapter registry, engine factory and
// metrics (WorkerStack); the online trainer with its tools listener (TrainerStack); and the
// service group that runs them with the health endpoint and shuts them down in order on SIGTERM
// or SIGINT (ServiceStack.run).
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ServiceLifecycle
import Tensor
import UnixSignals

/// A worker and what it needs: listener of the control topics, adapter registry over the store,
/// the engine factory, metrics.
public struct WorkerStack: Sendable {
    public let worker: Worker
    public let control: ControlListener
    public let registry: AdapterRegistry
    public let metrics: ServiceMetrics

    /// Assembles a worker on `model`. With `catalogue` nil, tools come from the `tools` topic;
    /// with `gate` nil, gate modes wait for a gate announced on `adapters` (and are served with the
    /// documents meanwhile when `documentFallback` is on). `documentFallback` also serves the
    /// tools without an adapter in the store with their documents in the prompt.
    public init(model: LanguageModel, settings: WorkerSettings, kafka: KafkaConfiguration, catalogue: ToolCatalogue?,
                gate: GateNetwork?, store: AdapterStore?, stackCacheBytes: Int = AdapterMixture.defaultStackCacheBytes,
                constrained: Bool = true, documentFallback: Bool = false, metrics: ServiceMetrics = ServiceMetrics(),
                logger: Logger) throws {
        if store == nil { logger.warning("no adapter store: tools have no adapters, the base model answers") }
        let registry = AdapterRegistry(store: store, config: model.model.config, cacheBytes: settings.adapterCacheBytes,
                                       metrics: metrics, logger: logger)
        // Prepared once: every engine the worker makes (one per catalogue or gate change) shares it.
        let vocabulary = constrained ? TokenVocabulary(tokenizer: model.tokenizer) : nil
        if !constrained { logger.notice("answers are not constrained to the call grammar (--unconstrained)") }
        let control = try ControlListener(kafka: kafka, topics: settings.topics, registry: registry, followTools: catalogue == nil,
                                          gateDimension: model.model.config.hiddenSize, toolLimits: settings.toolLimits, metrics: metrics, logger: logger)
        let factory = EngineFactoryBox(model: model, registry: registry, vocabulary: vocabulary, stackCacheBytes: stackCacheBytes,
                                       constrained: constrained, documentFallback: documentFallback, threads: settings.threads,
                                       selectionShortlist: settings.selectionShortlist)
        worker = Worker(settings: settings, kafka: kafka, catalogue: catalogue, gate: gate, control: control, metrics: metrics,
                        logger: logger, makeEngine: factory.make)
        self.control = control
        self.registry = registry
        self.metrics = metrics
    }

    /// The services in start order (the listener catches up before the worker serves).
    public var services: [any Service] { [control, worker] }

    /// The id Actions report for a model: its file or folder name without extension.
    public static func modelID(_ lm: LanguageModel) -> String {
        let url = URL(fileURLWithPath: lm.path)
        return url.pathExtension == "gguf" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
    }
}

/// What the worker's engines share. The model, registry and vocabulary are read-only once built
/// (the registry guards its own state), so engines on the worker's thread may use them.
private struct EngineFactoryBox: @unchecked Sendable {
    let model: LanguageModel
    let registry: AdapterRegistry
    let vocabulary: TokenVocabulary?
    let stackCacheBytes: Int
    let constrained: Bool
    let documentFallback: Bool
    let threads: ComputeThreads
    let selectionShortlist: Int

    func make(_ catalogue: ToolCatalogue, _ gate: GateNetwork?) throws -> ToolCallEngine {
        try ToolCallEngine(model: model, catalogue: catalogue, adapters: registry, gate: gate, stackCacheBytes: stackCacheBytes,
                           constrained: constrained, vocabulary: vocabulary, selectionShortlist: selectionShortlist,
                           documentFallback: documentFallback, threads: threads)
    }
}

/// The online trainer and, when its catalogue comes from the `tools` topic, that topic's listener.
public struct TrainerStack: Sendable {
    public let trainer: TrainerService
    public let toolsTopic: ControlListener?

    public init(settings: TrainerSettings, kafka: KafkaConfiguration, metrics: ServiceMetrics, logger: Logger) throws {
        toolsTopic = settings.tools == nil
            ? try ControlListener(kafka: kafka, topics: settings.topics, registry: nil, followTools: true, followAdapters: false,
                                  catchUpTimeout: .seconds(60), toolLimits: settings.toolLimits, metrics: metrics, logger: logger)
            : nil
        trainer = try TrainerService(settings: settings, kafka: kafka, toolsTopic: toolsTopic, metrics: metrics, logger: logger)
    }

    /// The services in start order.
    public var services: [any Service] { (toolsTopic.map { [$0] } ?? []) + [trainer] }
}

public enum ServiceStack {
    /// How long a graceful shutdown may take before the group cancels the services (a batch or
    /// a training step then stops where it is, uncommitted).
    public static let defaultShutdownTimeout: Duration = .seconds(60)

    /// Runs `services` in one service group until they end or SIGTERM/SIGINT arrives (when
    /// `signals`): services start in order and shut down in reverse, each after the one started
    /// after it has finished, so put the health server first and the worker last. A service that
    /// returns early ends the group unless it is listed in `mayFinish`.
    public static func run(_ services: [any Service], mayFinish: [any Service] = [], signals: Bool = true,
                           shutdownTimeout: Duration = defaultShutdownTimeout, logger: Logger) async throws {
        let finishing = Set(mayFinish.map { ObjectIdentifier($0 as AnyObject) })
        let configurations = services.map { service in
            ServiceGroupConfiguration.ServiceConfiguration(
                service: service,
                successTerminationBehavior: finishing.contains(ObjectIdentifier(service as AnyObject)) ? .ignore : .gracefullyShutdownGroup)
        }
        var config = ServiceGroupConfiguration(services: configurations, gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
                                               logger: logger)
        config.maximumGracefulShutdownDuration = shutdownTimeout
        config.maximumCancellationDuration = .seconds(30)
        try await ServiceGroup(configuration: config).run()
    }
}

/// A service group started in the background, without signal handlers (tests, benchmarks, a
/// process that runs several groups): `shutdown()` shuts it down gracefully and waits for it.
public final class RunningServices: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `services` (in order; see `ServiceStack.run`).
    public init(_ services: [any Service], shutdownTimeout: Duration = ServiceStack.defaultShutdownTimeout, logger: Logger) {
        var config = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }, logger: logger)
        config.maximumGracefulShutdownDuration = shutdownTimeout
        config.maximumCancellationDuration = .seconds(30)
        let group = ServiceGroup(configuration: config)
        self.group = group
        // The group's own coordination runs on a thread of its own too, so a caller that blocks a
        // thread of the cooperative pool while it waits for the services cannot starve them.
        task = Task(executorPreference: ServiceThread(name: "paratool-services")) { try await group.run() }
    }

    /// Shuts the group down in order and returns when every service has ended; throws the
    /// error a service ended with.
    public func shutdown() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Returns when the group has ended by itself (a service failed or every one returned).
    public func finished() async throws { try await task.value }
}
