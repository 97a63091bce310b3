// GeneratedAdapters: an AdapterProvider that serves, for a tool of its catalogue, the adapter an
// AdapterHypernetwork writes from the tool's document (encoded once by the gate's encoder), made on
// first use and kept. Its versions read `generated-<generator version>`, so a served answer says
// where its adapter came from.
import Foundation
import LLM
import Tensor

/// Adapters written by a generator from the catalogue's documents, by tool name.
public final class GeneratedAdapters: AdapterProvider {
    public let generator: AdapterHypernetwork
    public let catalogue: ToolCatalogue
    private let encoder: ContextEncoder
    private var made: [String: ToolAdapter] = [:]

    /// Serves `generator`'s adapters for the tools of `catalogue`, encoding their documents with
    /// `model`'s document encoder (`AdapterHypernetwork.documentEncoder`) on `threads`.
    public init(generator: AdapterHypernetwork, catalogue: ToolCatalogue, model: LlamaModel, tokenizer: Tokenizer,
                threads: ComputeThreads) throws {
        guard model.config.hiddenSize == generator.shape.encodingWidth, model.config.layerCount == generator.shape.layers else {
            throw ToolFormatError("the generator was made for a model of \(generator.shape.layers) layers and width \(generator.shape.encodingWidth); "
                                  + "this one has \(model.config.layerCount) and \(model.config.hiddenSize)")
        }
        self.generator = generator
        self.catalogue = catalogue
        encoder = AdapterHypernetwork.documentEncoder(model: model, tokenizer: tokenizer, threads: threads)
    }

    /// The version string of everything this provider serves.
    public var version: String { "generated-\(generator.provenance.version)" }

    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        if let adapter = made[tool] { return (adapter, version) }
        guard let spec = catalogue[tool] else { return nil }
        let adapter = generator.generate(name: tool, encoding: AdapterHypernetwork.encoding(of: spec, encoder: encoder))
        made[tool] = adapter
        return (adapter, version)
    }
}
