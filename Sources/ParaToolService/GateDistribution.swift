// GateDistribution: how a retrained gate reaches the workers. The trainer saves each gate in its
// own directory `<store>/.gates/<version>/` and announces it on the `adapters` topic as an
// AdapterUpdate for the reserved tool name `_gate` (uri = that directory, sha256 over its two
// files, hashed as the AdapterStore hashes adapters); workers verify the hash and swap the gate
// between batches.
import Foundation
import ParaTool
import Wire

public enum GateDistribution {
    /// The `adapters` topic key (and AdapterUpdate.tool) of gate versions.
    public static let toolKey = "_gate"

    /// Where the trainer keeps gate versions under an adapter store.
    public static func directory(store: URL) -> URL { store.appendingPathComponent(".gates", isDirectory: true) }

    /// A new version name: creation time in milliseconds, zero-padded so names sort in time order.
    public static func newVersion(now: Date = Date()) -> String {
        let ms = Int64(now.timeIntervalSince1970 * 1000)
        return "g" + String(repeating: "0", count: max(0, 15 - String(ms).count)) + String(ms)
    }

    /// The newest saved gate version directory, if any.
    public static func latest(store: URL) -> URL? {
        let root = directory(store: store)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { $0.hasPrefix("g") }.sorted().last.map { root.appendingPathComponent($0, isDirectory: true) }
    }

    /// sha256 of a saved gate's files.
    public static func contentHash(directory: URL) throws -> String {
        AdapterStore.contentHash(config: try Data(contentsOf: directory.appendingPathComponent(GateNetwork.configFileName)),
                                 weights: try Data(contentsOf: directory.appendingPathComponent(GateNetwork.weightsFileName)))
    }

    /// The announcement of the gate saved in `directory` as `version`.
    public static func update(directory: URL, version: String) throws -> WireAdapterUpdate {
        WireAdapterUpdate(tool: toolKey, version: version, uri: directory.path, sha256: try contentHash(directory: directory),
                          stage: "gate", createdUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// Loads the announced gate after checking its files against the announced hash.
    public static func load(_ update: WireAdapterUpdate) throws -> GateNetwork {
        let directory = URL(fileURLWithPath: update.uri, isDirectory: true)
        let actual = try contentHash(directory: directory)
        guard actual == update.sha256.lowercased() else {
            throw AdapterUpdateRefusal.store("gate \(update.version) at \(update.uri): files hash to \(actual), the update says \(update.sha256)")
        }
        return try GateNetwork.load(from: directory)
    }
}
