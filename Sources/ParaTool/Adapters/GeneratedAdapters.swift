// GeneratedAdapters: an AdapterProvider that serves, for a tool of its catalogue, the adapter an
// AdapterHypernetwork writes from the tool's document (encoded by the gate's encoder), made on
// first use and kept (the newest `capacity` of them: each is a float32 copy, 12 MB at rank 16 on
// SmolLM2-135M). Its versions read `generated-<generator version>`, so a served answer says
// where its adapter came from.
import Foundation
import LLM
import Tensor

/// Adapters written by a generator from the catalogue's documents, by tool name.
public final class GeneratedAdapters: AdapterProvider {
    public let generator: AdapterHypernetwork
    public let catalogue: ToolCatalogue
    private let encoder: ContextEncoder
    /// How many written adapters are kept (the oldest is dropped first).
    public let capacity: Int
    private var made: [String: ToolAdapter] = [:]
    private var order: [String] = []

    /// Serves `generator`'s adapters for the tools of `catalogue`, encoding their documents with
    /// `model`'s document encoder (`AdapterHypernetwork.documentEncoder`) on `threads`.
    public init(generator: AdapterHypernetwork, catalogue: ToolCatalogue, model: LlamaModel, tokenizer: Tokenizer,
                threads: ComputeThreads, capacity: Int = 32) throws {
        guard model.config.hiddenSize == generator.shape.encodingWidth, model.config.layerCount == generator.shape.layers else {
            throw ToolFormatError("the generator was made for a model of \(generator.shape.layers) layers and width \(generator.shape.encodingWidth); "
                                  + "this one has \(model.config.layerCount) and \(model.config.hiddenSize)")
        }
        self.generator = generator
        self.catalogue = catalogue
        self.capacity = max(1, capacity)
        encoder = AdapterHypernetwork.documentEncoder(model: model, tokenizer: tokenizer, threads: threads)
    }

    /// The version string of everything this provider serves.
    public var version: String { "generated-\(generator.provenance.version)" }

    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        if let adapter = made[tool] { return (adapter, version) }
        guard let spec = catalogue[tool] else { return nil }
        let adapter = generator.generate(name: tool, encoding: AdapterHypernetwork.encoding(of: spec, encoder: encoder))
        if order.count == capacity { made[order.removeFirst()] = nil }
        made[tool] = adapter
        order.append(tool)
        return (adapter, version)
    }
}
