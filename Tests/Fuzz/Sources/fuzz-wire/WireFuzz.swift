// fuzz-wire: the bytes of a Kafka message decoded as every message type of paratool.proto. Each
// decode must give a value or a WireError; a decoded value must encode, and its encoding decode to
// a value that encodes to the same bytes (bytes, not values: a NaN timing is not equal to itself);
// and decoding stays within the heap bound the message limit sets.
import FuzzSupport
import Wire

/// Decoding a message may use at most this much heap: what `WireLimits` promises (the C form in a
/// budget of the message limit) plus the Swift value built from it.
let bound = AllocationBound(factor: 16, slack: 1 << 16)

func attempt<M: WireMessage>(_ type: M.Type, _ bytes: [UInt8]) {
    let decoded: M? = bound.check(M.protoName, inputSize: bytes.count) {
        do {
            return try M(bytes: bytes, limits: .default)
        } catch is WireError {
            return nil
        } catch {
            fatalError("\(M.protoName): an error that is not a WireError: \(error)")
        }
    }
    guard let decoded else { return }
    do {
        let encoded = try decoded.encode()
        let again = try M(bytes: encoded, limits: .default)
        guard try again.encode() == encoded else { fatalError("\(M.protoName): the re-encoded message decodes to another value") }
    } catch {
        fatalError("\(M.protoName): a decoded message does not encode and decode again: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    attempt(WireToolCallRequest.self, bytes)
    attempt(WireAction.self, bytes)
    attempt(WireFlopsTelemetry.self, bytes)
    attempt(WireTrajectory.self, bytes)
    attempt(WireAdapterUpdate.self, bytes)
    attempt(WireToolSpec.self, bytes)
    attempt(WireFeedback.self, bytes)
    attempt(WireForgetRequest.self, bytes)
    attempt(WireToolCall.self, bytes)
    attempt(WireStep.self, bytes)
    attempt(WireToolWeight.self, bytes)
    attempt(WireErrorDetail.self, bytes)
    attempt(WirePhaseTimings.self, bytes)
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzWire`.
@_cdecl("fuzz_wire_main")
public func fuzzWireMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzWire)
}
