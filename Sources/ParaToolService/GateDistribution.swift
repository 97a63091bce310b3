// GateDistribution: how a retrained gate reaches the workers. Training saves each gate in its
// own directory `<store>/.gates/<version>/` (AdapterStore's gate layout) and the trainer announces it on the `adapters` topic as an
// AdapterUpdate for the reserved tool name `_gate` (uri = that directory, sha256 over its two
// files, hashed as the AdapterStore hashes adapters); workers verify the hash and the gate's
// dimension against their model's and swap the gate between batches.
import Foundation
import ParaTool
import Wire

public enum GateDistribution {
    /// The `adapters` topic key (and AdapterUpdate.tool) of gate versions.
    public static let toolKey = "_gate"

    /// sha256 of a saved gate's files.
    public static func contentHash(directory: URL) throws -> String {
        AdapterStore.contentHash(config: try Data(contentsOf: directory.appendingPathComponent(GateNetwork.configFileName)),
                                 weights: try Data(contentsOf: directory.appendingPathComponent(GateNetwork.weightsFileName)))
    }

    /// The announcement of the gate saved in `directory`, a version directory of the gate
    /// layout (its name is the version).
    public static func update(directory: URL) throws -> WireAdapterUpdate {
        WireAdapterUpdate(tool: toolKey, version: directory.lastPathComponent, uri: directory.path, sha256: try contentHash(directory: directory),
                          stage: "gate", createdUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// Loads the announced gate after checking its files against the announced hash (and its
    /// config's widths, `GateNetwork.load`). With `dimension` (the serving model's hidden size), a
    /// gate of another dimension is refused here, before an engine is built with it.
    public static func load(_ update: WireAdapterUpdate, dimension: Int? = nil) throws -> GateNetwork {
        let directory = URL(fileURLWithPath: update.uri, isDirectory: true)
        let actual = try contentHash(directory: directory)
        guard actual == update.sha256.lowercased() else {
            throw AdapterUpdateRefusal.store("gate \(update.version) at \(update.uri): files hash to \(actual), the update says \(update.sha256)")
        }
        let gate = try GateNetwork.load(from: directory)
        if let dimension, gate.config.dimension != dimension {
            throw GateError.dimensionMismatch(gate: gate.config.dimension, encoder: dimension)
        }
        return gate
    }
}
