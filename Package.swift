// swift-tools-version: 6.0
// ParaTool: parametric tool calling on a CPU Llama-family runtime.
// Dependency order (one way only): C system libraries → Tensor → LLM → ParaTool → service → CLI.
import PackageDescription

// The numeric layers are compiled with optimisation even in debug builds: unoptimised SIMD
// loops run ~50x slower, which would make `swift test` on the real model take many minutes.
let optimizedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "ParaTool",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "paratool", targets: ["paratool"]),
        .library(name: "LLM", targets: ["LLM"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "ParaTool", targets: ["ParaTool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // C system libraries (Debian packages, found through pkg-config).
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),

        // float32 kernels, memory-mapped files, quantised block formats. The only Swift layer
        // (with Kafka and Wire later) that touches unsafe pointers.
        // Hot decode kernels in C with per-function AVX-512/AVX2 variants chosen at run time.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: optimizedInDebug),
        // Llama-family runtime: configs, safetensors/GGUF loading, tokenizer, transformer, decode.
        .target(name: "LLM", dependencies: ["Tensor"], swiftSettings: optimizedInDebug),
        // The method: tool catalogue and actions, prompt formats, tool adapters (PEFT layout) and
        // their store, the gate, fused multi-adapter inference, FLOPs accounting.
        .target(
            name: "ParaTool",
            dependencies: ["LLM", "Tensor", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimizedInDebug),
        .executableTarget(
            name: "paratool",
            dependencies: [
                "LLM", "Tensor", "ParaTool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "LLMTests", dependencies: ["LLM", "Tensor"]),
        .testTarget(name: "ParaToolTests", dependencies: ["ParaTool", "LLM", "Tensor"]),
    ]
)
