// ServiceStack: assembles a worker from a loaded model and the service settings (catalogue, gate,
// adapter registry over the store, engine factory, metrics), shared by `serve` and `up`; and the
// health endpoint started beside it.
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService

struct ServiceStack {
    let worker: Worker
    let metrics: ServiceMetrics
    let registry: AdapterRegistry

    /// The id Actions report for a model: its file or folder name without extension.
    static func modelID(_ lm: LanguageModel) -> String {
        let url = URL(fileURLWithPath: lm.path)
        return url.pathExtension == "gguf" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
    }

    static func worker(lm: LanguageModel, settings: WorkerSettings, kafka: KafkaConfiguration, toolsFile: String?,
                       gateDirectory: String?, storeDirectory: String?,
                       stackCacheBytes: Int = AdapterMixture.defaultStackCacheBytes, constrained: Bool = true,
                       logger: Logger) throws -> ServiceStack {
        let catalogue = try toolsFile.map { try ToolCatalogue.load(file: URL(fileURLWithPath: $0)) }
        let gate = try loadGate(gateDirectory, for: lm) {
            logger.warning("no --gate: using an untrained gate; its weights are not meaningful until trained")
        }
        let store = try storeDirectory.map { try AdapterStore(root: URL(fileURLWithPath: $0)) }
        if store == nil { logger.warning("no --adapter-store: tools have no adapters, the base model answers") }
        let registry = AdapterRegistry(store: store, config: lm.model.config, logger: logger)
        let metrics = ServiceMetrics()
        // Prepared once: every engine the worker makes (one per catalogue change) shares it.
        let vocabulary = constrained ? TokenVocabulary(tokenizer: lm.tokenizer) : nil
        if !constrained { logger.notice("answers are not constrained to the call grammar (--unconstrained)") }
        let worker = Worker(settings: settings, kafka: kafka, catalogue: catalogue, gate: gate, registry: registry, metrics: metrics,
                            logger: logger) { catalogue, gate in
            try ToolCallEngine(model: lm, catalogue: catalogue, adapters: registry, gate: gate, stackCacheBytes: stackCacheBytes,
                               constrained: constrained, vocabulary: vocabulary)
        }
        return ServiceStack(worker: worker, metrics: metrics, registry: registry)
    }

    /// Starts /metrics and /healthz on `port`, waiting until it listens.
    static func startHealth(port: Int, metrics: ServiceMetrics, isReady: @escaping @Sendable () -> Bool,
                            logger: Logger) throws -> HealthHandle {
        let result = BlockingResult<HealthServer>()
        Task {
            do { result.set(.success(try await HealthServer(port: UInt16(port), metrics: metrics, isReady: isReady, logger: logger))) } catch {
                result.set(.failure(error))
            }
        }
        return HealthHandle(server: try result.wait())
    }
}

/// A running health server, stopped synchronously.
struct HealthHandle {
    let server: HealthServer
    func stop() {
        let done = DispatchSemaphore(value: 0)
        Task {
            await server.stop()
            done.signal()
        }
        done.wait()
    }
}

/// A value produced on another thread, waited for on this one.
final class BlockingResult<Value: Sendable>: @unchecked Sendable {
    private var value: Result<Value, Error>?
    private let ready = DispatchSemaphore(value: 0)
    func set(_ result: Result<Value, Error>) {
        value = result
        ready.signal()
    }
    func wait() throws -> Value {
        ready.wait()
        return try value!.get()
    }
}
