// Tests of ProcessEnvironment: which start-time settings a process still lacks (an operator's own
// value always wins, so a restarted process never restarts again).
import Tensor
import XCTest

final class ProcessEnvironmentTests: XCTestCase {
    func testOnlySettingsWhoseVariableIsUnsetAreMissing() {
        let wanted = [ProcessEnvironment.Setting(name: "MALLOC_ARENA_MAX", value: "1"),
                      ProcessEnvironment.Setting(name: "OPENBLAS_CORETYPE", value: "Haswell")]
        XCTAssertEqual(ProcessEnvironment.missing(wanted, in: [:]), wanted)
        XCTAssertEqual(ProcessEnvironment.missing(wanted, in: ["MALLOC_ARENA_MAX": "8"]), [wanted[1]])
        // After the restart both are set: nothing is missing, whatever the values.
        XCTAssertEqual(ProcessEnvironment.missing(wanted, in: ["MALLOC_ARENA_MAX": "1", "OPENBLAS_CORETYPE": "Zen"]), [])
        XCTAssertEqual(ProcessEnvironment.missing([], in: [:]), [])
    }
}
