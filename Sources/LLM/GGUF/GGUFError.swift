// GGUFError: everything that can be wrong with a GGUF file or a request for one of its tensors.
import Tensor

/// Errors raised while parsing a GGUF file or reading its tensors. Each names the file or the
/// tensor and, where it helps, the byte offset.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    /// The file does not start with the bytes "GGUF".
    case badMagic(path: String, found: [UInt8])
    /// A GGUF version other than 2 or 3.
    case unsupportedVersion(path: String, version: UInt32)
    /// A read of `length` bytes at `offset` runs past the end of the file (`fileSize` bytes).
    case truncated(path: String, offset: Int, length: Int, fileSize: Int)
    /// A metadata value type id outside the GGUF specification.
    case unknownValueType(path: String, key: String, typeID: UInt32)
    /// A tensor type id that GGML does not define.
    case unknownTensorType(path: String, tensor: String, typeID: UInt32)
    /// The file holds no tensor with this name.
    case tensorMissing(name: String, path: String)
    /// The tensor's type cannot be expanded to float32.
    case unsupportedTensorType(tensor: String, type: GGMLType)
    /// The tensor's data (`length` bytes at absolute `offset`) runs past the end of the file.
    case dataPastEnd(tensor: String, offset: Int, length: Int, fileSize: Int)
    /// A structurally invalid file: `reason` says what and where.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .badMagic(let path, let found):
            let shown = found.map { String($0, radix: 16) }.joined(separator: " ")
            return "\(path): not a GGUF file (magic bytes \(shown), expected 47 47 55 46 \"GGUF\")"
        case .unsupportedVersion(let path, let v):
            return "\(path): GGUF version \(v) is not supported (only versions 2 and 3)"
        case .truncated(let path, let offset, let length, let size):
            return "\(path): truncated — reading \(length) bytes at offset \(offset) runs past the end of the file (\(size) bytes)"
        case .unknownValueType(let path, let key, let id):
            return "\(path): metadata key \"\(key)\" has unknown value type \(id)"
        case .unknownTensorType(let path, let tensor, let id):
            return "\(path): tensor \"\(tensor)\" has unknown GGML type id \(id)"
        case .tensorMissing(let name, let path):
            return "\(path): no tensor named \"\(name)\""
        case .unsupportedTensorType(let tensor, let type):
            return "tensor \"\(tensor)\" has type \(type.name) (id \(type.rawValue)), which cannot be dequantised (supported: \(GGMLType.dequantizableNames))"
        case .dataPastEnd(let tensor, let offset, let length, let size):
            return "tensor \"\(tensor)\": data of \(length) bytes at offset \(offset) runs past the end of the file (\(size) bytes)"
        case .invalid(let path, let reason):
            return "\(path): invalid GGUF file: \(reason)"
        }
    }
}
