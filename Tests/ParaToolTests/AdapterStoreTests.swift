// Tests of AdapterStore: publish / list / load, hash verification against tampering, concurrent
// publishers, tool-name validation. Fixtures come from AdapterTestFixtures (AdapterIOTests.swift).
import Foundation
import LLM
import Tensor
import XCTest

@testable import ParaTool

final class AdapterStoreTests: XCTestCase {
    private func makeStore() throws -> AdapterStore {
        try AdapterStore(root: try AdapterTestFixtures.temporaryDirectory(self).appendingPathComponent("store"))
    }

    private func fixture(_ k: Int) throws -> ToolAdapter {
        try ToolAdapter.load(peftDirectory: try AdapterTestFixtures.adapter(k))
    }

    private func assertSameWeights(_ a: ToolAdapter, _ b: ToolAdapter, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.rank, b.rank, file: file, line: line)
        XCTAssertEqual(a.alpha, b.alpha, file: file, line: line)
        XCTAssertEqual(a.targets, b.targets, file: file, line: line)
        XCTAssertEqual(a.pairs.count, b.pairs.count, file: file, line: line)
        for layer in 0..<a.pairs.count {
            for p in FFNProjection.allCases {
                XCTAssertEqual(a.pair(layer: layer, projection: p)?.a.toArray(), b.pair(layer: layer, projection: p)?.a.toArray(),
                               file: file, line: line)
                XCTAssertEqual(a.pair(layer: layer, projection: p)?.b.toArray(), b.pair(layer: layer, projection: p)?.b.toArray(),
                               file: file, line: line)
            }
        }
    }

    func testPublishLatestLoad() throws {
        let store = try makeStore()
        XCTAssertNil(try store.latest(tool: "get_weather"))
        XCTAssertEqual(try store.versions(tool: "get_weather"), [])
        XCTAssertEqual(try store.tools(), [])

        let first = try fixture(0), second = try fixture(1)
        let v1 = try store.publish(first, tool: "get_weather", stage: "pretrain", baseModel: "qwen2", format: .float32)
        XCTAssertEqual(v1.version, "v000001")
        XCTAssertEqual(v1.tool, "get_weather")
        XCTAssertEqual(v1.stage, "pretrain")
        XCTAssertNil(v1.parent)
        let v2 = try store.publish(second, tool: "get_weather", stage: "joint", baseModel: "qwen2", parent: v1.version)
        XCTAssertEqual(v2.version, "v000002")
        XCTAssertEqual(v2.parent, "v000001")
        XCTAssertGreaterThanOrEqual(v2.createdUnixMs, v1.createdUnixMs)
        XCTAssertNotEqual(v1.sha256, v2.sha256)

        XCTAssertEqual(try store.latest(tool: "get_weather"), v2)
        XCTAssertEqual(try store.versions(tool: "get_weather"), [v1, v2])
        XCTAssertEqual(try store.tools(), ["get_weather"])

        let loaded = try store.load(tool: "get_weather", version: v2.version, expectedSHA256: v2.sha256)
        XCTAssertEqual(loaded.name, "get_weather")
        // v2 in the default format, bfloat16: the values are second's rounded (the rounding itself is
        // checked against gguf-py in NarrowRowsTests), read in place from the mapped file.
        XCTAssertEqual(loaded.format, .bfloat16)
        assertSameWeights(loaded, second.converted(to: .bfloat16))
        XCTAssertTrue(loaded.pairs.allSatisfy { $0.values.allSatisfy { $0.aWeights.isMapped && $0.bWeights.isMapped } })
        XCTAssertEqual(loaded.residentBytes * 2, second.residentBytes)
        // v1 asked for float32: the same bits back.
        let exact = try store.load(tool: "get_weather", version: "v000001", config: try AdapterTestFixtures.qwen2Config())
        XCTAssertEqual(exact.format, .float32)
        assertSameWeights(exact, first)
        let dtypes = { (v: AdapterVersion) in
            Set(try SafetensorsFile(path: v.path.appendingPathComponent("adapter_model.safetensors").path).entries.values.map(\.dtype))
        }
        XCTAssertEqual(try dtypes(v1), ["F32"])
        XCTAssertEqual(try dtypes(v2), ["BF16"])

        // The manifest as written, and the version folder as a plain PEFT folder with metadata.
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: v2.path.appendingPathComponent("manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["tool"] as? String, "get_weather")
        XCTAssertEqual(manifest["version"] as? String, "v000002")
        XCTAssertEqual(manifest["sha256"] as? String, v2.sha256)
        XCTAssertEqual(manifest["stage"] as? String, "joint")
        XCTAssertEqual(manifest["parent"] as? String, "v000001")
        XCTAssertEqual((manifest["created_unix_ms"] as? NSNumber)?.int64Value, v2.createdUnixMs)
        XCTAssertEqual(manifest["prompt_wording"] as? String, PromptWording.fingerprint)
        XCTAssertTrue(v2.matchesPromptWording)
        let weights = try SafetensorsFile(path: v2.path.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertEqual(weights.metadata, ["format": "pt"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: v2.path.path).sorted(),
                       ["adapter_config.json", "adapter_model.safetensors", "manifest.json"])
        // No temporary folders remain.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(
            atPath: store.root.appendingPathComponent("get_weather").path).sorted(), ["v000001", "v000002"])

        // A second store instance on the same root sees the same versions.
        XCTAssertEqual(try AdapterStore(root: store.root).versions(tool: "get_weather"), [v1, v2])
        XCTAssertThrowsError(try store.load(tool: "get_weather", version: "v000003")) {
            XCTAssertEqual($0 as? AdapterStoreError, .versionNotFound(tool: "get_weather", version: "v000003"))
        }
        XCTAssertThrowsError(try store.load(tool: "get_weather", version: "3")) {
            XCTAssertEqual($0 as? AdapterStoreError, .invalidVersion("3"))
        }
    }

    /// A publisher that died mid-write leaves a `.tmp-*` folder; the next publish removes it once
    /// it is older than `abandonedTemporaryAge`, and leaves a fresh one (a live publisher's) alone.
    func testAbandonedTemporaryFoldersAreRemoved() throws {
        let store = try makeStore()
        let toolDir = store.root.appendingPathComponent("get_weather")
        let fm = FileManager.default
        let old = toolDir.appendingPathComponent(".tmp-dead"), fresh = toolDir.appendingPathComponent(".tmp-live")
        for dir in [old, fresh] {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data("partial".utf8).write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        }
        try fm.setAttributes([.modificationDate: Date().addingTimeInterval(-2 * 3600)], ofItemAtPath: old.path)
        _ = try store.publish(try fixture(0), tool: "get_weather", stage: "pretrain", baseModel: "qwen2")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: toolDir.path).sorted(), [".tmp-live", "v000001"])
    }

    /// A version published with other prompt wording, or before the field existed, reads back
    /// as not matching this build's wording (so `up` retrains it and workers warn).
    func testPromptWordingIsRecordedPerVersion() throws {
        let store = try makeStore()
        let other = try store.publish(try fixture(0), tool: "get_weather", stage: "pretrain", baseModel: "qwen2",
                                      promptWording: "0123456789abcdef")
        XCTAssertEqual(try store.latest(tool: "get_weather")?.promptWording, "0123456789abcdef")
        XCTAssertFalse(other.matchesPromptWording)

        // A manifest written before the field existed (hand-written, no "prompt_wording").
        let url = other.path.appendingPathComponent("manifest.json")
        let old = #"{"created_unix_ms": 1700000000000, "sha256": "\#(other.sha256)", "stage": "pretrain", "tool": "get_weather", "version": "v000001"}"#
        try Data(old.utf8).write(to: url)
        let read = try XCTUnwrap(try store.latest(tool: "get_weather"))
        XCTAssertNil(read.promptWording)
        XCTAssertFalse(read.matchesPromptWording)
        XCTAssertNoThrow(try store.load(tool: "get_weather", version: "v000001", expectedSHA256: other.sha256))
    }

    /// A version published held for review is not served until a review promotes it; a rejected
    /// one stays in the store with its reason and is passed over for good; decisions are final,
    /// and a version not held takes none.
    func testHeldVersionsAreServedOnlyOncePromoted() throws {
        let store = try makeStore()
        let v1 = try store.publish(try fixture(0), tool: "get_weather", stage: "pretrain", baseModel: "qwen2")
        let v2 = try store.publish(try fixture(1), tool: "get_weather", stage: "pretrain", baseModel: "qwen2", heldForReview: true)
        XCTAssertTrue(v2.heldForReview)
        XCTAssertFalse(v1.heldForReview)
        XCTAssertEqual(try store.latest(tool: "get_weather"), v1, "pending: still v1")
        XCTAssertNil(try store.review(tool: "get_weather", version: v2.version))
        XCTAssertEqual(try store.versions(tool: "get_weather").map(\.version), ["v000001", "v000002"])

        let score = HeldOutScore(episodes: 4, correct: 1, meanNLL: 2.5)
        let rejected = AdapterReview(decision: .rejected, reason: "accuracy 25.0% below 75.0%", servingVersion: "v000001",
                                     candidate: score, serving: HeldOutScore(episodes: 4, correct: 3, meanNLL: 1.0), heldOutSteps: 4,
                                     decidedUnixMs: 1_700_000_000_000)
        try store.recordReview(rejected, tool: "get_weather", version: v2.version)
        XCTAssertEqual(try AdapterStore(root: store.root).review(tool: "get_weather", version: v2.version), rejected)
        XCTAssertEqual(try store.latest(tool: "get_weather"), v1, "rejected: never served")
        XCTAssertThrowsError(try store.recordReview(rejected, tool: "get_weather", version: v2.version)) {
            XCTAssertEqual($0 as? AdapterStoreError, .alreadyReviewed(tool: "get_weather", version: "v000002"))
        }
        XCTAssertThrowsError(try store.recordReview(rejected, tool: "get_weather", version: v1.version)) {
            XCTAssertEqual($0 as? AdapterStoreError, .notHeldForReview(tool: "get_weather", version: "v000001"))
        }

        let v3 = try store.publish(try fixture(2), tool: "get_weather", stage: "joint", baseModel: "qwen2", heldForReview: true)
        var promoted = rejected
        promoted.decision = .promoted
        try store.recordReview(promoted, tool: "get_weather", version: v3.version)
        XCTAssertEqual(try store.latest(tool: "get_weather"), v3)
        XCTAssertEqual(try store.latest(tool: "get_weather")?.heldForReview, true)

        // The files as documented: the manifest says held_for_review, the review its decision.
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: v3.path.appendingPathComponent("manifest.json"))) as? [String: Any]
        XCTAssertEqual(manifest?["held_for_review"] as? Bool, true)
        let reviewURL = store.root.appendingPathComponent("get_weather/.reviews/v000002.json")
        let review = try JSONSerialization.jsonObject(with: Data(contentsOf: reviewURL)) as? [String: Any]
        XCTAssertEqual(review?["decision"] as? String, "rejected")
        XCTAssertEqual(review?["serving_version"] as? String, "v000001")
        XCTAssertEqual((review?["candidate"] as? [String: Any])?["mean_nll"] as? Double, 2.5)
        XCTAssertEqual(review?["held_out_steps"] as? Int, 4)
        let plain = try JSONSerialization.jsonObject(with: Data(contentsOf: v1.path.appendingPathComponent("manifest.json"))) as? [String: Any]
        XCTAssertNotNil(plain)
        XCTAssertNil(plain?["held_for_review"], "left out when not held")

        // A malformed review is an error that names the file, not a silent "pending".
        try Data("{".utf8).write(to: reviewURL)
        XCTAssertThrowsError(try store.review(tool: "get_weather", version: "v000002")) {
            guard case .invalidReview(let path, _)? = $0 as? AdapterStoreError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, reviewURL.path)
        }
    }

    /// manifest.json as written (the documented keys, optional ones only when set), and each way
    /// a manifest can be wrong refused as an invalid manifest that says what is wrong.
    func testManifestFileLayoutAndInvalidManifests() throws {
        let store = try makeStore()
        let v = try store.publish(try fixture(0), tool: "get_weather", stage: "pretrain", baseModel: "qwen2", promptWording: "ab")
        let url = v.path.appendingPathComponent("manifest.json")
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        XCTAssertEqual(Set(written.keys), ["tool", "version", "sha256", "created_unix_ms", "stage", "prompt_wording"])
        XCTAssertEqual(written["created_unix_ms"] as? Int64, v.createdUnixMs)
        XCTAssertEqual(written["prompt_wording"] as? String, "ab")

        let sha = v.sha256
        let cases: [(String, String)] = [
            ("[1, 2]", "not a JSON object"),
            ("not json", "not a JSON object"),
            (#"{"tool": "get_weather", "version": "v000001", "sha256": "\#(sha)", "created_unix_ms": 1}"#, "needs stage"),
            (#"{"tool": "get_weather", "version": "v000001", "sha256": "\#(sha)", "created_unix_ms": "soon", "stage": "x"}"#, "created_unix_ms has the wrong type"),
            (#"{"tool": "book_flight", "version": "v000001", "sha256": "\#(sha)", "created_unix_ms": 1, "stage": "x"}"#, "describes book_flight/v000001"),
            (#"{"tool": "get_weather", "version": "v000001", "sha256": "\#(sha.uppercased())", "created_unix_ms": 1, "stage": "x"}"#, "64 lowercase hex"),
        ]
        for (text, reason) in cases {
            try Data(text.utf8).write(to: url)
            XCTAssertThrowsError(try store.manifest(tool: "get_weather", version: "v000001"), text) { error in
                guard case AdapterStoreError.invalidManifest(let path, let r) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, url.path)
                XCTAssertTrue(r.contains(reason), "\(text): \(r)")
            }
        }
    }

    /// The wording fingerprint as documented, recomputed with Python hashlib over the wording
    /// below: `hashlib.sha256(b"".join(p.encode() + b"\0" for p in parts)).hexdigest()[:16]`.
    /// A deliberate change of the wording changes it, and with it every store's adapters go stale.
    func testPromptWordingFingerprintDefinition() {
        XCTAssertEqual(PromptWording.role, "You call tools to answer the question, or answer in plain text when no tool applies.")
        XCTAssertEqual(PromptWording.fingerprint, "6a3ef40f9dd64f78")
    }

    /// The documented hash, recomputed by an independent implementation (Python hashlib).
    func testContentHashDefinition() throws {
        let store = try makeStore()
        let v = try store.publish(try fixture(2), tool: "t", stage: "pretrain", baseModel: "qwen2")
        let script = """
            import hashlib, struct, sys
            h = hashlib.sha256()
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                b = open(sys.argv[1] + "/" + name, "rb").read()
                h.update(struct.pack("<Q", len(b))); h.update(b)
            print(h.hexdigest())
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, v.path.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { throw XCTSkip("python3 not available: \(error)") }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(out, v.sha256)
        XCTAssertEqual(try AdapterStore.contentHash(directory: v.path), v.sha256)
    }

    /// A version loaded once is trusted again only while its files are unchanged: modified in
    /// place after a successful load (same size, same inode), it is hashed again and refused.
    func testAVersionModifiedAfterItsFirstLoadIsRefused() throws {
        let store = try makeStore()
        let v = try store.publish(try fixture(0), tool: "calc", stage: "pretrain", baseModel: "qwen2")
        XCTAssertNoThrow(try store.load(tool: "calc", version: v.version))
        XCTAssertNoThrow(try store.load(tool: "calc", version: v.version), "a second load of the unchanged files")
        let url = v.path.appendingPathComponent("adapter_model.safetensors")
        Thread.sleep(forTimeInterval: 0.02)  // a modification time the first load's cannot equal
        let handle = try FileHandle(forUpdating: url)
        try handle.seek(toOffset: try handle.seekToEnd() - 3)
        let byte = try XCTUnwrap(handle.readData(ofLength: 1).first)
        try handle.seek(toOffset: try handle.seekToEnd() - 3)
        try handle.write(contentsOf: Data([byte ^ 0x01]))
        try handle.close()
        XCTAssertThrowsError(try store.load(tool: "calc", version: v.version)) {
            guard case .hashMismatch = $0 as? AdapterStoreError else { return XCTFail("unexpected error \($0)") }
        }
    }

    func testTamperedWeightsAreRefused() throws {
        let store = try makeStore()
        let v = try store.publish(try fixture(0), tool: "calc", stage: "pretrain", baseModel: "qwen2")
        let url = v.path.appendingPathComponent("adapter_model.safetensors")
        var data = try Data(contentsOf: url)
        data[data.count - 3] ^= 0x01
        try data.write(to: url)
        XCTAssertThrowsError(try store.load(tool: "calc", version: v.version)) { error in
            guard case .hashMismatch(let tool, let version, let manifest, let actual) = error as? AdapterStoreError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(tool, "calc")
            XCTAssertEqual(version, v.version)
            XCTAssertEqual(manifest, v.sha256)
            XCTAssertNotEqual(actual, v.sha256)
            XCTAssertTrue("\(error)".contains("corrupt or was modified"))
        }
        // A tampered config is caught too.
        let v2 = try store.publish(try fixture(0), tool: "calc", stage: "pretrain", baseModel: "qwen2")
        let config = v2.path.appendingPathComponent("adapter_config.json")
        try (try Data(contentsOf: config) + Data(" ".utf8)).write(to: config)
        XCTAssertThrowsError(try store.load(tool: "calc", version: v2.version)) {
            guard case .hashMismatch = $0 as? AdapterStoreError else { return XCTFail("unexpected error \($0)") }
        }
    }

    func testExpectedHashMustMatch() throws {
        let store = try makeStore()
        let v = try store.publish(try fixture(1), tool: "search", stage: "joint", baseModel: "qwen2")
        let wrong = String(repeating: "0", count: 64)
        XCTAssertThrowsError(try store.load(tool: "search", version: v.version, expectedSHA256: wrong)) {
            XCTAssertEqual($0 as? AdapterStoreError,
                           .unexpectedHash(tool: "search", version: v.version, expected: wrong, actual: v.sha256))
        }
        XCTAssertNoThrow(try store.load(tool: "search", version: v.version, expectedSHA256: v.sha256.uppercased()))
    }

    func testConcurrentPublishersGetDistinctCompleteVersions() throws {
        let root = try AdapterTestFixtures.temporaryDirectory(self).appendingPathComponent("store")
        // Already in the store's format, so each loaded version must equal one of them bit for bit.
        let adapters = try (0..<3).map { try fixture($0).converted(to: .bfloat16) }
        let threads = 6, perThread = 3
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var versions = [AdapterVersion]()
            var errors = [String]()
        }
        let results = Results()
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    // A separate store instance per thread, as separate processes would have.
                    let store = try AdapterStore(root: root)
                    for i in 0..<perThread {
                        let v = try store.publish(adapters[(t + i) % 3], tool: "shared_tool", stage: "s\(t)", baseModel: "qwen2")
                        results.lock.lock()
                        results.versions.append(v)
                        results.lock.unlock()
                    }
                } catch {
                    results.lock.lock()
                    results.errors.append("\(error)")
                    results.lock.unlock()
                }
            }
            thread.start()
        }
        group.wait()
        XCTAssertEqual(results.errors, [])
        let total = threads * perThread
        XCTAssertEqual(Set(results.versions.map(\.version)).count, total)
        let store = try AdapterStore(root: root)
        let listed = try store.versions(tool: "shared_tool")
        XCTAssertEqual(listed.map(\.version), (1...total).map(AdapterStore.versionString))
        XCTAssertEqual(Set(listed.map(\.sha256)), Set(results.versions.map(\.sha256)))
        for v in results.versions {
            let loaded = try store.load(tool: "shared_tool", version: v.version, expectedSHA256: v.sha256)
            XCTAssertEqual(try store.manifest(tool: "shared_tool", version: v.version), v)
            let t = Int(v.stage.dropFirst())!
            XCTAssertTrue((0..<perThread).contains { i in
                adapters[(t + i) % 3].pair(layer: 0, projection: .up)!.a.toArray() == loaded.pair(layer: 0, projection: .up)!.a.toArray()
            })
        }
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("shared_tool").path)
            .contains { $0.hasPrefix(".tmp-") })
    }

    /// Two child processes (this test binary, running `testChildPublisher`) and this process
    /// publish to one tool at the same time.
    func testConcurrentProcessesGetDistinctCompleteVersions() throws {
        #if os(Linux)
        let root = try AdapterTestFixtures.temporaryDirectory(self).appendingPathComponent("store")
        let perProcess = 4
        let children = try (0..<2).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
            p.arguments = ["ParaToolTests.AdapterStoreTests/testChildPublisher"]
            var env = ProcessInfo.processInfo.environment
            env["PARATOOL_TEST_CHILD_STORE"] = root.path
            env["PARATOOL_TEST_CHILD_COUNT"] = String(perProcess)
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let store = try AdapterStore(root: root)
        let adapter = try fixture(2)
        for _ in 0..<perProcess {
            _ = try store.publish(adapter, tool: "multi", stage: "parent", baseModel: "qwen2")
        }
        for p in children {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        let listed = try store.versions(tool: "multi")
        XCTAssertEqual(listed.map(\.version), (1...(3 * perProcess)).map(AdapterStore.versionString))
        XCTAssertEqual(listed.filter { $0.stage == "parent" }.count, perProcess)
        XCTAssertEqual(listed.filter { $0.stage == "child" }.count, 2 * perProcess)
        for v in listed { XCTAssertNoThrow(try store.load(tool: "multi", version: v.version, expectedSHA256: v.sha256)) }
        #else
        throw XCTSkip("spawns the Linux test binary directly")
        #endif
    }

    /// The child side of `testConcurrentProcessesGetDistinctCompleteVersions`; does nothing
    /// unless started by it.
    func testChildPublisher() throws {
        let env = ProcessInfo.processInfo.environment
        guard let root = env["PARATOOL_TEST_CHILD_STORE"], let count = Int(env["PARATOOL_TEST_CHILD_COUNT"] ?? "") else { return }
        let store = try AdapterStore(root: URL(fileURLWithPath: root))
        let adapter = try fixture(1)
        for _ in 0..<count {
            _ = try store.publish(adapter, tool: "multi", stage: "child", baseModel: "qwen2")
        }
    }

    func testConcurrentTasksPublishDistinctVersions() async throws {
        let store = try makeStore()
        let adapter = try fixture(0)
        let versions = try await withThrowingTaskGroup(of: AdapterVersion.self) { group in
            for i in 0..<6 {
                group.addTask { try store.publish(adapter, tool: "tasks", stage: "t\(i)", baseModel: "qwen2") }
            }
            return try await group.reduce(into: [AdapterVersion]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(versions.map(\.version)), Set((1...6).map(AdapterStore.versionString)))
        XCTAssertEqual(Set(versions.map(\.sha256)).count, 1)
        XCTAssertEqual(try store.latest(tool: "tasks")?.version, "v000006")
    }

    func testInvalidToolNamesAreRejected() throws {
        let store = try makeStore()
        let adapter = try fixture(0)
        for name in ["", "a/b", "..", ".", ".hidden", "../escape", "has space", "tool\u{0}", "ünïcode",
                     String(repeating: "x", count: 129)] {
            XCTAssertThrowsError(try store.publish(adapter, tool: name, stage: "s", baseModel: "m"), name) {
                guard case .invalidToolName(let n, _) = $0 as? AdapterStoreError else { return XCTFail("\(name): \($0)") }
                XCTAssertEqual(n, name)
            }
            XCTAssertThrowsError(try store.versions(tool: name), name)
            XCTAssertThrowsError(try store.load(tool: name, version: "v000001"), name)
        }
        for name in ["get_weather", "math.factorial", "Tool-2", String(repeating: "x", count: 128)] {
            XCTAssertNoThrow(try AdapterStore.validate(tool: name), name)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.root.path), [])
    }
}
