// AdapterStore: versioned, content-hashed, atomically published tool adapters in a directory
// (local or a shared volume): `<root>/<tool>/<version>/` holds the PEFT files and a
// `manifest.json`. Publishing never overwrites or exposes a half-written version, whether the
// competing publishers are tasks of one process or separate processes.
import Crypto
import Synchronization
import Foundation
import LLM

/// Errors raised by the adapter store.
public enum AdapterStoreError: Error, CustomStringConvertible, Equatable {
    /// The tool name cannot be used as a directory name.
    case invalidToolName(String, reason: String)
    /// The version string is not `v` followed by at least six digits without extra leading zeros.
    case invalidVersion(String)
    /// No such version of the tool.
    case versionNotFound(tool: String, version: String)
    /// `manifest.json` is missing, malformed or names another tool or version.
    case invalidManifest(path: String, reason: String)
    /// The files' content hash differs from the manifest's (the files changed after publishing).
    case hashMismatch(tool: String, version: String, manifest: String, actual: String)
    /// The verified hash differs from the one the caller expected (e.g. from an AdapterUpdate).
    case unexpectedHash(tool: String, version: String, expected: String, actual: String)
    /// Publishing found no free version number after many attempts.
    case publishFailed(tool: String, reason: String)
    /// A review file is unreadable or malformed.
    case invalidReview(path: String, reason: String)
    /// A review was recorded for a version that was not published held for review.
    case notHeldForReview(tool: String, version: String)
    /// The version already has its (final) review.
    case alreadyReviewed(tool: String, version: String)

    public var description: String {
        switch self {
        case .invalidToolName(let n, let r): return "invalid tool name '\(n)': \(r)"
        case .invalidVersion(let v): return "invalid adapter version '\(v)' (expected v followed by digits, e.g. v000003)"
        case .versionNotFound(let t, let v): return "adapter store has no version \(v) of tool '\(t)'"
        case .invalidManifest(let p, let r): return "\(p): invalid manifest: \(r)"
        case .hashMismatch(let t, let v, let m, let a):
            return "adapter \(t)/\(v) is corrupt or was modified: content sha256 is \(a), manifest says \(m)"
        case .unexpectedHash(let t, let v, let e, let a):
            return "adapter \(t)/\(v) has content sha256 \(a), but \(e) was expected"
        case .publishFailed(let t, let r): return "cannot publish an adapter for '\(t)': \(r)"
        case .invalidReview(let p, let r): return "\(p): invalid review: \(r)"
        case .notHeldForReview(let t, let v): return "adapter \(t)/\(v) was not published held for review, so it takes no review"
        case .alreadyReviewed(let t, let v): return "adapter \(t)/\(v) is already reviewed (decisions are final)"
        }
    }
}

/// One published adapter version, as described by its `manifest.json`.
public struct AdapterVersion: Sendable, Equatable {
    /// The tool the adapter belongs to.
    public let tool: String
    /// The version, `v` and a zero-padded integer (e.g. `v000003`), increasing per tool.
    public let version: String
    /// The content hash (lowercase hex), defined by `AdapterStore.contentHash(config:weights:)`.
    public let sha256: String
    /// Publication time, milliseconds since the Unix epoch.
    public let createdUnixMs: Int64
    /// The training stage that produced it (e.g. `pretrain`, `joint`).
    public let stage: String
    /// The version this one was derived from, if the publisher named one.
    public let parent: String?
    /// `PromptWording.fingerprint` of the prompts it was trained on (nil: not recorded, as in
    /// versions published before the field existed).
    public let promptWording: String?
    /// Published held for review (a retrained candidate): served only once an `AdapterReview`
    /// promotes it.
    public let heldForReview: Bool
    /// `ToolSpec.schemaFingerprint` of the tool's schema it was trained on (nil: not recorded,
    /// as in versions published before the field existed, and the Global adapter).
    public let schemaFingerprint: String?
    /// The version's directory (a PEFT adapter folder).
    public let path: URL

    public init(tool: String, version: String, sha256: String, createdUnixMs: Int64, stage: String,
                parent: String? = nil, promptWording: String? = nil, heldForReview: Bool = false,
                schemaFingerprint: String? = nil, path: URL) {
        self.tool = tool
        self.version = version
        self.sha256 = sha256
        self.createdUnixMs = createdUnixMs
        self.stage = stage
        self.parent = parent
        self.promptWording = promptWording
        self.heldForReview = heldForReview
        self.schemaFingerprint = schemaFingerprint
        self.path = path
    }

    /// The integer in the version string.
    public var number: Int { Int(version.dropFirst()) ?? 0 }

    /// Whether it was trained on this build's prompt wording (`PromptWording.fingerprint`).
    public var matchesPromptWording: Bool { promptWording == PromptWording.fingerprint }

    /// Whether it was trained on a schema other than `spec`'s (false when none was recorded).
    public func isStale(for spec: ToolSpec) -> Bool {
        schemaFingerprint.map { $0 != spec.schemaFingerprint } ?? false
    }
}

/// A directory of versioned tool adapters: `<root>/<tool>/<version>/` with the PEFT files
/// (`adapter_config.json`, `adapter_model.safetensors`) and `manifest.json`
/// `{"tool", "version", "sha256", "created_unix_ms", "stage", "parent"?, "prompt_wording"?,
/// "held_for_review"?, "schema_fingerprint"?}`; a held version's decision is in `<root>/<tool>/.reviews/<version>.json`
/// (`AdapterReview`).
///
/// A version directory is immutable once it appears: publishing writes everything into
/// `<root>/<tool>/.tmp-<uuid>/`, fsyncs the files and the directory, and renames it to the
/// version's name. The rename fails when another publisher took that number first (version
/// directories are never empty), so the publisher retries with the next number. Readers never
/// see a partial version, and no version is ever overwritten. The store holds no state besides
/// its root, so any number of instances, tasks and processes may share one directory.
public final class AdapterStore: Sendable {
    /// The store's root directory.
    public let root: URL

    /// The manifest file name in each version directory.
    public static let manifestFileName = "manifest.json"

    /// The one layout of stored gates: each trained gate in its own version directory
    /// `<root>/.gates/<version>/` (GateNetwork's two files), versions named by creation time.
    public static func gatesDirectory(root: URL) -> URL { root.appendingPathComponent(".gates", isDirectory: true) }

    /// A new gate version name: creation time in milliseconds, zero-padded so names sort in time order.
    public static func newGateVersion(now: Date = Date()) -> String {
        let ms = Int64(now.timeIntervalSince1970 * 1000)
        return "g" + String(repeating: "0", count: max(0, 15 - String(ms).count)) + String(ms)
    }

    /// The newest complete gate version directory under `root` (one holding its config), if any.
    public static func latestGate(root: URL) -> URL? {
        let gates = gatesDirectory(root: root)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: gates.path)) ?? []
        return names.filter { $0.hasPrefix("g") }.sorted().reversed().lazy
            .map { gates.appendingPathComponent($0, isDirectory: true) }
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent(GateNetwork.configFileName).path) }
    }

    /// Versions whose content hash this instance verified, with the identity (inode, size,
    /// modification time) their two files had then: a version read again with both unchanged (an
    /// adapter dropped from a worker's cache and asked for again) is not hashed again. Published
    /// versions are never rewritten, so a changed identity is a damaged or tampered file.
    private let verified = Mutex<[String: [FileIdentity]]>([:])

    /// What identifies a file's contents without reading them.
    struct FileIdentity: Equatable {
        let inode: UInt64, size: UInt64, modified: Date?

        init?(_ url: URL) {
            guard let a = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
            inode = (a[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            size = (a[.size] as? NSNumber)?.uint64Value ?? 0
            modified = a[.modificationDate] as? Date
        }
    }

    /// Opens the store at `root`, creating the directory if needed.
    public init(root: URL) throws {
        self.root = root.standardizedFileURL
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
    }

    /// The content hash of a version: SHA-256 over
    /// `len(config) ‖ config ‖ len(weights) ‖ weights`, where `config` and `weights` are the exact
    /// bytes of `adapter_config.json` and `adapter_model.safetensors` and each `len` is the byte
    /// count as an unsigned 64-bit little-endian integer (the lengths make the split between the
    /// two files unambiguous). Returned as 64 lowercase hex digits.
    public static func contentHash(config: Data, weights: Data) -> String {
        var hasher = SHA256()
        for part in [config, weights] {
            let n = UInt64(part.count)
            hasher.update(data: Data((0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }))
            hasher.update(data: part)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The content hash of the PEFT files in `directory` (see `contentHash(config:weights:)`).
    public static func contentHash(directory: URL) throws -> String {
        let config = try Data(contentsOf: directory.appendingPathComponent(ToolAdapter.peftConfigFileName))
        // Mapped, not copied: the hash reads the pages the adapter is then served from.
        let weights = try Data(contentsOf: directory.appendingPathComponent(ToolAdapter.peftWeightsFileName), options: .alwaysMapped)
        return contentHash(config: config, weights: weights)
    }

    /// Throws unless `tool` is a usable tool name: 1–128 characters from `A–Z a–z 0–9 _ - .`,
    /// not starting with `.` (so no `..`, hidden or temporary names) and containing no `/`.
    public static func validate(tool: String) throws {
        func bad(_ r: String) -> AdapterStoreError { .invalidToolName(tool, reason: r) }
        guard !tool.isEmpty else { throw bad("empty") }
        guard tool.utf8.count <= 128 else { throw bad("longer than 128 bytes") }
        guard !tool.contains("/") else { throw bad("contains '/'") }
        guard !tool.hasPrefix(".") else { throw bad("starts with '.'") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.".unicodeScalars)
        guard tool.unicodeScalars.allSatisfy(allowed.contains) else {
            throw bad("only letters, digits, '_', '-' and '.' are allowed")
        }
    }

    /// The version string for number `n`: `v` and at least six digits.
    public static func versionString(_ n: Int) -> String {
        let digits = String(n)
        return "v" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// Publishes `adapter` as the next version of `tool` and returns its description.
    ///
    /// - Parameters:
    ///   - stage: the training stage that produced the adapter, recorded in the manifest.
    ///   - baseModel: written to `base_model_name_or_path` of the PEFT config.
    ///   - parent: an earlier version the adapter was derived from, recorded in the manifest.
    ///   - promptWording: the fingerprint of the prompts it was trained on, recorded in the
    ///     manifest (default: this build's `PromptWording.fingerprint`).
    ///   - heldForReview: publish a candidate that is served only once a review promotes it
    ///     (`recordReview`); until then `latest` passes over it.
    ///   - schemaFingerprint: the `ToolSpec.schemaFingerprint` of the schema it was trained on.
    ///   - format: how the weights are stored: bfloat16 (the default: half the bytes, read in place
    ///     by decode and prefill, a relative rounding of at most 2⁻⁹ per weight) or float32.
    public func publish(_ adapter: ToolAdapter, tool: String, stage: String, baseModel: String,
                        parent: String? = nil, promptWording: String? = PromptWording.fingerprint,
                        heldForReview: Bool = false, schemaFingerprint: String? = nil,
                        format: AdapterWeightFormat = .bfloat16) throws -> AdapterVersion {
        try Self.validate(tool: tool)
        if let parent { try Self.checkVersionSyntax(parent) }
        let toolDir = root.appendingPathComponent(tool, isDirectory: true)
        let fm = FileManager.default
        try fm.createDirectory(at: toolDir, withIntermediateDirectories: true)
        Self.removeAbandonedTemporaries(in: toolDir)
        let tmp = toolDir.appendingPathComponent(".tmp-\(UUID().uuidString)", isDirectory: true)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        var published = false
        defer { if !published { try? fm.removeItem(at: tmp) } }

        try adapter.converted(to: format).save(peftDirectory: tmp, baseModel: baseModel)
        let sha = try Self.contentHash(directory: tmp)
        let created = Int64((Date().timeIntervalSince1970 * 1000).rounded())

        for _ in 0..<1000 {
            let number = (try versionNumbers(toolDir: toolDir).last ?? 0) + 1
            let version = Self.versionString(number)
            let final = toolDir.appendingPathComponent(version, isDirectory: true)
            let result = AdapterVersion(tool: tool, version: version, sha256: sha, createdUnixMs: created,
                                        stage: stage, parent: parent, promptWording: promptWording, heldForReview: heldForReview,
                                        schemaFingerprint: schemaFingerprint, path: final)
            try DurableFiles.write(try Self.manifestData(result), to: tmp.appendingPathComponent(Self.manifestFileName))
            if try DurableFiles.renameDirectoryIfAbsent(tmp, to: final) {
                published = true
                try DurableFiles.syncDirectory(toolDir)
                return result
            }
        }
        throw AdapterStoreError.publishFailed(tool: tool, reason: "no free version number after 1000 attempts")
    }

    /// All published versions of `tool`, oldest first (empty when the tool has none).
    public func versions(tool: String) throws -> [AdapterVersion] {
        try Self.validate(tool: tool)
        let toolDir = root.appendingPathComponent(tool, isDirectory: true)
        return try versionNumbers(toolDir: toolDir).map { try manifest(tool: tool, version: Self.versionString($0)) }
    }

    /// The newest version of `tool` that workers may serve — passing over versions held for
    /// review and not promoted (pending or rejected) — or nil when it has none.
    public func latest(tool: String) throws -> AdapterVersion? {
        try Self.validate(tool: tool)
        let toolDir = root.appendingPathComponent(tool, isDirectory: true)
        for n in try versionNumbers(toolDir: toolDir).reversed() {
            let entry = try manifest(tool: tool, version: Self.versionString(n))
            if try isServable(entry) { return entry }
        }
        return nil
    }

    /// The manifest of one version.
    public func manifest(tool: String, version: String) throws -> AdapterVersion {
        try Self.validate(tool: tool)
        try Self.checkVersionSyntax(version)
        let dir = root.appendingPathComponent(tool, isDirectory: true).appendingPathComponent(version, isDirectory: true)
        let url = dir.appendingPathComponent(Self.manifestFileName)
        guard FileManager.default.fileExists(atPath: dir.path) else {
            throw AdapterStoreError.versionNotFound(tool: tool, version: version)
        }
        func bad(_ r: String) -> AdapterStoreError { .invalidManifest(path: url.path, reason: r) }
        guard let data = try? Data(contentsOf: url) else { throw bad("cannot read the file") }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch let error as DecodingError {
            throw bad(Manifest.describe(error))
        }
        guard m.tool == tool, m.version == version else { throw bad("describes \(m.tool)/\(m.version), but lives in \(tool)/\(version)") }
        guard m.sha256.count == 64, m.sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw bad("sha256 must be 64 lowercase hex digits")
        }
        return AdapterVersion(tool: m.tool, version: m.version, sha256: m.sha256, createdUnixMs: m.createdUnixMs, stage: m.stage,
                              parent: m.parent, promptWording: m.promptWording, heldForReview: m.heldForReview ?? false,
                              schemaFingerprint: m.schemaFingerprint, path: dir)
    }

    /// Loads version `version` of `tool` after checking that its files still hash to the
    /// manifest's sha256 and, when `expectedSHA256` is given (e.g. from an AdapterUpdate
    /// message), that this hash is the expected one. The adapter is named after the tool. A
    /// version this store instance verified before is not hashed again while its files keep the
    /// inode, size and modification time they had then.
    public func load(tool: String, version: String, expectedSHA256: String? = nil,
                     config: ModelConfig? = nil) throws -> ToolAdapter {
        let entry = try manifest(tool: tool, version: version)
        let files = [ToolAdapter.peftConfigFileName, ToolAdapter.peftWeightsFileName].map { entry.path.appendingPathComponent($0) }
        let identity = files.compactMap(FileIdentity.init)
        let key = entry.path.path + "\u{0}" + entry.sha256
        let verifiedBefore = identity.count == 2 && verified.withLock { $0[key] == identity }
        let actual = verifiedBefore ? entry.sha256 : try Self.contentHash(directory: entry.path)
        guard actual == entry.sha256 else {
            throw AdapterStoreError.hashMismatch(tool: tool, version: version, manifest: entry.sha256, actual: actual)
        }
        if let expectedSHA256, expectedSHA256.lowercased() != actual {
            throw AdapterStoreError.unexpectedHash(tool: tool, version: version, expected: expectedSHA256, actual: actual)
        }
        if !verifiedBefore && identity.count == 2 { verified.withLock { $0[key] = identity } }
        return try ToolAdapter.load(peftDirectory: entry.path, name: tool, config: config)
    }

    /// The tools that have at least one published version, sorted.
    public func tools() throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
        return try names.filter { (try? Self.validate(tool: $0)) != nil }.sorted().filter {
            try !versionNumbers(toolDir: root.appendingPathComponent($0, isDirectory: true)).isEmpty
        }
    }

    /// Published version numbers under `toolDir`, ascending; temporary directories are ignored.
    private func versionNumbers(toolDir: URL) throws -> [Int] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: toolDir.path, isDirectory: &isDir), isDir.boolValue else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: toolDir.path)
            .compactMap { Self.parseVersion($0) }.sorted()
    }

    private static func parseVersion(_ s: String) -> Int? {
        guard s.hasPrefix("v"), s.count > 1, s.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(s.dropFirst()), versionString(n) == s else { return nil }
        return n
    }

    private static func checkVersionSyntax(_ version: String) throws {
        guard parseVersion(version) != nil else { throw AdapterStoreError.invalidVersion(version) }
    }

    /// How old a `.tmp-*` folder must be before a publisher takes it for the leftover of a
    /// publisher that died mid-write (a live one finishes within seconds).
    public static let abandonedTemporaryAge: TimeInterval = 3600

    /// Removes `.tmp-*` folders in `toolDir` last modified more than `abandonedTemporaryAge`
    /// ago. Best effort: a folder that cannot be removed now is tried again on the next publish.
    private static func removeAbandonedTemporaries(in toolDir: URL) {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: toolDir.path) else { return }
        let cutoff = Date().addingTimeInterval(-abandonedTemporaryAge)
        for entry in entries where entry.hasPrefix(".tmp-") {
            let url = toolDir.appendingPathComponent(entry, isDirectory: true)
            guard let modified = (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
                  modified < cutoff else { continue }
            try? fm.removeItem(at: url)
        }
    }

    private static func manifestData(_ v: AdapterVersion) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(Manifest(tool: v.tool, version: v.version, sha256: v.sha256, createdUnixMs: v.createdUnixMs,
                                           stage: v.stage, parent: v.parent, promptWording: v.promptWording,
                                           heldForReview: v.heldForReview ? true : nil, schemaFingerprint: v.schemaFingerprint))
    }

    /// The schema of `manifest.json` (an `AdapterVersion` without its directory); optional
    /// fields are left out when nil.
    private struct Manifest: Codable {
        var tool: String
        var version: String
        var sha256: String
        var createdUnixMs: Int64
        var stage: String
        var parent: String?
        var promptWording: String?
        var heldForReview: Bool?
        var schemaFingerprint: String?

        enum CodingKeys: String, CodingKey {
            case tool, version, sha256, stage, parent
            case createdUnixMs = "created_unix_ms"
            case promptWording = "prompt_wording"
            case heldForReview = "held_for_review"
            case schemaFingerprint = "schema_fingerprint"
        }

        /// A decoding failure in the manifest's own terms.
        static func describe(_ error: DecodingError) -> String {
            switch error {
            case .keyNotFound(let key, _): return "needs \(key.stringValue)"
            case .typeMismatch(_, let c) where c.codingPath.isEmpty: return "not a JSON object"
            case .typeMismatch(_, let c), .valueNotFound(_, let c):
                return "\(c.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
            case .dataCorrupted(let c) where c.codingPath.isEmpty: return "not a JSON object"
            case .dataCorrupted(let c): return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
            @unknown default: return "\(error)"
            }
        }
    }
}

/// Adapters from an `AdapterStore`: each tool's latest version, loaded once per version and
/// checked against its manifest hash.
public final class StoreAdapters: AdapterProvider {
    public let store: AdapterStore
    public let config: ModelConfig
    private var cache: [String: (adapter: ToolAdapter, version: String)] = [:]

    public init(store: AdapterStore, config: ModelConfig) {
        self.store = store
        self.config = config
    }

    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        guard let latest = try store.latest(tool: tool) else { return nil }
        if let hit = cache[tool], hit.version == latest.version { return hit }
        let adapter = try store.load(tool: tool, version: latest.version, expectedSHA256: latest.sha256, config: config)
        cache[tool] = (adapter, latest.version)
        return (adapter, latest.version)
    }
}
