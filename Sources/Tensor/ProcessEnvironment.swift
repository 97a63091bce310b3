// ProcessEnvironment: settings the C libraries read from the environment only while the process
// starts (OpenBLAS's kernel set when it is loaded, glibc's heap count at the first malloc), applied
// by re-executing the program once with them set.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Environment settings that take effect only from the start of a process.
public enum ProcessEnvironment {
    /// One environment variable and the value the process should start with.
    public struct Setting: Equatable, Sendable {
        public let name: String
        public let value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The settings of `wanted` whose variable `environment` does not hold: an operator's own
    /// value always wins.
    public static func missing(_ wanted: [Setting], in environment: [String: String]) -> [Setting] {
        wanted.filter { environment[$0.name] == nil }
    }

    /// Re-executes the program (same executable, same arguments) once with the missing settings
    /// added to its environment; returns at once when none is missing, or when the exec fails (the
    /// process then carries on as it started). The restarted process finds every variable set, so
    /// it does not restart again. Call it first thing in `main`, before any thread exists.
    public static func restartIfMissing(_ wanted: [Setting]) {
        #if os(Linux)
        let toSet = missing(wanted, in: ProcessInfo.processInfo.environment)
        guard !toSet.isEmpty else { return }
        for setting in toSet { setenv(setting.name, setting.value, 1) }
        var cArgs = CommandLine.arguments.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", &cArgs)
        for p in cArgs { free(p) }
        #endif
    }
}
