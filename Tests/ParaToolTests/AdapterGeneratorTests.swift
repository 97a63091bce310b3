// Tests of AdapterGenerator: the generated adapter is the start plus λ times the softmax-weighted
// mean of the k nearest references' moves, checked element by element against that formula
// computed here with plain loops and hand-derived weights.
import Foundation
import LLM
import Tensor
import XCTest

@testable import ParaTool

final class AdapterGeneratorTests: XCTestCase {
    private func adapter(_ name: String, seed: UInt64, rank: Int = 4) throws -> ToolAdapter {
        ToolAdapter.initialized(name: name, config: try AdapterTestFixtures.qwen2Config(), rank: rank, alpha: 8, seed: seed, randomB: true)
    }

    /// Every A and B value of `adapter`, in a fixed order.
    private func values(_ adapter: ToolAdapter) -> [Float] {
        adapter.pairs.flatMap { layer in FFNProjection.allCases.compactMap { layer[$0] }.flatMap { $0.a.toArray() + $0.b.toArray() } }
    }

    /// Start, and references whose encodings have cosine 1, 0, −1 and 0.6 with [1, 0].
    private func generator() throws -> AdapterGenerator {
        try AdapterGenerator(start: adapter("start", seed: 1), references: [
            GeneratorReference(tool: "same", encoding: [2, 0], adapter: try adapter("same", seed: 2)),
            GeneratorReference(tool: "orthogonal", encoding: [0, 3], adapter: try adapter("orthogonal", seed: 3)),
            GeneratorReference(tool: "opposite", encoding: [-1, 0], adapter: try adapter("opposite", seed: 4)),
            GeneratorReference(tool: "near", encoding: [3, 4], adapter: try adapter("near", seed: 5)),
        ], centred: false)
    }

    func testWeightsAreTheSoftmaxOfTheNearestCosines() throws {
        let g = try generator()
        let w = g.weights(for: [1, 0], settings: AdapterGeneratorSettings(neighbours: 2, temperature: 0.5, strength: 1))
        XCTAssertEqual(w.map(\.tool), ["same", "near"])
        // softmax([1, 0.6] / 0.5) = [e^2, e^1.2] / (e^2 + e^1.2)
        let (a, b) = (exp(2.0), exp(1.2))
        XCTAssertEqual(Double(w[0].weight), a / (a + b), accuracy: 1e-6)
        XCTAssertEqual(Double(w[1].weight), b / (a + b), accuracy: 1e-6)
        let excluded = g.weights(for: [1, 0], settings: AdapterGeneratorSettings(neighbours: 2, temperature: 0.5, strength: 1), excluding: ["same"])
        XCTAssertEqual(excluded.map(\.tool), ["near", "orthogonal"])
    }

    func testCentredCosinesAreTakenAfterSubtractingTheReferencesMean() throws {
        // Mean [10, 0]: the references become [0, 1] and [0, −1], the query [1, 1] becomes [−9, 1],
        // so the cosines are ±1/√82 (raw, both are above 0.6).
        let g = try AdapterGenerator(start: adapter("start", seed: 1), references: [
            GeneratorReference(tool: "up", encoding: [10, 1], adapter: try adapter("up", seed: 2)),
            GeneratorReference(tool: "down", encoding: [10, -1], adapter: try adapter("down", seed: 3)),
        ])
        XCTAssertEqual(g.centre, [10, 0])
        let w = g.weights(for: [1, 1], settings: AdapterGeneratorSettings(neighbours: 2, temperature: 0.5, strength: 1))
        XCTAssertEqual(w.map(\.tool), ["up", "down"])
        let c = 1 / 82.0.squareRoot()
        let (a, b) = (exp(c / 0.5), exp(-c / 0.5))
        XCTAssertEqual(Double(w[0].weight), a / (a + b), accuracy: 1e-6)
        XCTAssertEqual(Double(w[1].weight), b / (a + b), accuracy: 1e-6)
    }

    func testGeneratedAdapterIsTheStartPlusTheWeightedMoves() throws {
        let g = try generator()
        let settings = AdapterGeneratorSettings(neighbours: 2, temperature: 0.5, strength: 0.5)
        let (made, mixed) = g.generate(name: "new", encoding: [1, 0], settings: settings)
        XCTAssertEqual(made.name, "new")
        XCTAssertEqual(made.rank, 4)
        XCTAssertEqual(made.alpha, 8)
        XCTAssertEqual(mixed.map(\.tool), ["same", "near"])
        let (a, b) = (exp(2.0), exp(1.2))
        let (wSame, wNear) = (Float(0.5 * a / (a + b)), Float(0.5 * b / (a + b)))
        let start = values(g.start), same = values(g.references[0].adapter), near = values(g.references[3].adapter)
        let got = values(made)
        XCTAssertEqual(got.count, start.count)
        for i in start.indices {
            let expected = start[i] + wSame * (same[i] - start[i]) + wNear * (near[i] - start[i])
            XCTAssertEqual(got[i], expected, accuracy: 1e-6, "value \(i)")
        }
    }

    func testStrengthZeroIsTheStartAndOneNeighbourIsThatReference() throws {
        let g = try generator()
        let none = g.generate(name: "x", encoding: [1, 0], settings: AdapterGeneratorSettings(neighbours: 3, temperature: 1, strength: 0)).adapter
        XCTAssertEqual(values(none), values(g.start))
        let nearest = g.generate(name: "x", encoding: [0, 1], settings: AdapterGeneratorSettings(neighbours: 1, temperature: 1, strength: 1)).adapter
        for (x, y) in zip(values(nearest), values(g.references[1].adapter)) { XCTAssertEqual(x, y, accuracy: 1e-6) }
    }

    func testReferencesOfAnotherShapeAreRefused() throws {
        XCTAssertThrowsError(try AdapterGenerator(start: adapter("start", seed: 1), references: [
            GeneratorReference(tool: "r8", encoding: [1], adapter: try adapter("r8", seed: 2, rank: 8)),
        ]))
        XCTAssertThrowsError(try AdapterGenerator(start: adapter("start", seed: 1), references: [
            GeneratorReference(tool: "two", encoding: [1, 2], adapter: try adapter("two", seed: 2)),
            GeneratorReference(tool: "three", encoding: [1, 2, 3], adapter: try adapter("three", seed: 3)),
        ], centred: false))
    }
}
