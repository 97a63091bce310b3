// Deploy/ is checked here because no Docker engine or cluster exists in CI: the compose and k8s
// YAML parse and reference only files, flags and settings the built binary documents
// (Deploy/check.py, with its own self-test), and the embedded demo catalogue is the one Deploy ships.
import Foundation
import ParaTool
import ParaToolService
import Testing

@Suite struct DeployConfigTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        p.currentDirectoryURL = Self.repo
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func composeAndKubernetesFilesMatchTheBinary() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("paratool")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "paratool is built beside the tests")
        let check = try python(["Deploy/check.py", "--binary", binary.path])
        #expect(check.status == 0, "\(check.output)")
        let selfTest = try python(["Deploy/check_test.py"])
        #expect(selfTest.status == 0, "\(selfTest.output)")
    }

    @Test func embeddedDemoCatalogueIsTheShippedOne() throws {
        let embedded = try DemoCatalogue.catalogue()
        for path in ["Deploy/demo/tools.json", "Deploy/k8s/tools.json"] {
            #expect(try ToolCatalogue.load(file: Self.repo.appendingPathComponent(path)) == embedded, "\(path)")
        }
        #expect(embedded.names == ["get_weather", "convert_currency", "search_flights", "set_timer"])
    }

    /// Each of the demo's check sets (BFCL format, for `paratool eval`) asks exactly its embedded
    /// check queries (none of them another set's or an example query), over the demo tools (their schemas in BFCL's type names, which BFCL's checker
    /// reads: float for number, dict for object), each with a gold answer.
    @Test(arguments: [("check_multiple", DemoCatalogue.checkQueries), ("check2_multiple", DemoCatalogue.secondCheckQueries),
                      ("check3_parallel_multiple", DemoCatalogue.multiCallCheckQueries),
                      ("check4_irrelevance", DemoCatalogue.noCallCheckQueries)])
    func demoCheckSetIsTheEmbeddedOne(file: String, queries: [String]) throws {
        let questions = try BFCLQuestion.load(file: Self.repo.appendingPathComponent("Deploy/demo/\(file).json"))
        #expect(questions.map { $0.turns.first?.last?.content ?? "" } == queries)
        let otherSets = [DemoCatalogue.checkQueries, DemoCatalogue.secondCheckQueries, DemoCatalogue.multiCallCheckQueries,
                         DemoCatalogue.noCallCheckQueries].filter { $0 != queries }
        #expect(Set(queries).isDisjoint(with: DemoCatalogue.exampleQueries + otherSets.flatMap { $0 }))
        let demo = try DemoCatalogue.catalogue()
        for q in questions {
            #expect(q.functions.map(\.name) == demo.names)
            #expect(q.functions.map(\.parameterNames) == demo.tools.map(\.parameterNames))
            #expect(q.functions.map(\.requiredParameters) == demo.tools.map(\.requiredParameters))
        }
        // Irrelevance questions have no gold answer: correct is no call.
        guard !file.contains("irrelevance") else { return }
        let answers = try BFCLAnswer.load(file: Self.repo.appendingPathComponent("Deploy/demo/\(file)_answers.json"))
        #expect(answers.map(\.id) == questions.map(\.id))
    }
}
