// swift-tools-version: 6.0
// ParaTool's libFuzzer targets: one executable per parser of untrusted bytes, each with an
// `LLVMFuzzerTestOneInput` entry. A package of its own so the ordinary `swift build` and
// `swift test` of the repository never build them; `Tests/Fuzz/run.sh` builds them with
// `-sanitize=fuzzer,address` into `.build-fuzz` and runs them.
import Foundation
import PackageDescription

// The repository's package is the one two folders up; a path dependency is named by its folder
// (an identity, so in lower case).
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent.lowercased()

/// A fuzz target: its folder under Sources/ and the repository products it reads.
func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: rootPackage) },
        swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
    name: "ParaToolFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: root.path)],
    targets: [
        // What the targets share: scratch files for the loaders that read paths, and the
        // allocation bound that hostile headers must stay under.
        // libFuzzer's driver and the allocation hooks; not instrumented: the hooks run inside malloc and free.
        .target(name: "CFuzzSupport", cSettings: [.unsafeFlags(["-fno-sanitize=all"])]),
        .target(name: "FuzzSupport", dependencies: ["CFuzzSupport"]),
        fuzzTarget("fuzz-wire", ["Wire"]),
        fuzzTarget("fuzz-json", ["ParaTool"]),
        fuzzTarget("fuzz-action", ["ParaTool"]),
        fuzzTarget("fuzz-gguf", ["LLM"]),
        fuzzTarget("fuzz-safetensors", ["LLM"]),
        fuzzTarget("fuzz-peft", ["ParaTool", "LLM"]),
        fuzzTarget("fuzz-tokenizer", ["LLM"]),
        fuzzTarget("fuzz-chat-template", ["LLM"]),
        fuzzTarget("fuzz-catalogue", ["ParaTool"]),
        fuzzTarget("fuzz-call-grammar", ["ParaTool"]),
    ]
)
