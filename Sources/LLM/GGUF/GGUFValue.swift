// GGUFValue: one metadata value of a GGUF file (every GGUF value type folds into six cases),
// with typed accessors for the shapes model loaders ask for.

/// A GGUF metadata value.
///
/// The file's value types fold as follows: uint8/16/32/64 → `.uint`, int8/16/32/64 → `.int`,
/// float32/64 → `.float`, bool → `.bool`, string → `.string`, array (of any type, including
/// arrays) → `.array`.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The value as an `Int` when it is an integer that fits (signed or unsigned).
    public var intValue: Int? {
        switch self {
        case .uint(let v): return Int(exactly: v)
        case .int(let v): return Int(exactly: v)
        default: return nil
        }
    }

    /// The value as a `Double` when it is a float or an integer.
    public var doubleValue: Double? {
        switch self {
        case .float(let v): return v
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        default: return nil
        }
    }

    /// The value as a `Float` when it is a float or an integer.
    public var floatValue: Float? { doubleValue.map(Float.init) }

    /// The value when it is a bool.
    public var boolValue: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    /// The value when it is a string.
    public var stringValue: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    /// The elements when the value is an array.
    public var arrayValue: [GGUFValue]? {
        if case .array(let v) = self { return v }
        return nil
    }

    /// The elements when the value is an array of strings.
    public var stringArray: [String]? { mapArray(\.stringValue) }

    /// The elements when the value is an array of integers that all fit in `Int`.
    public var intArray: [Int]? { mapArray(\.intValue) }

    /// The elements when the value is an array of integers that all fit in `Int32`.
    public var int32Array: [Int32]? { mapArray { $0.intValue.flatMap { Int32(exactly: $0) } } }

    /// The elements when the value is an array of floats or integers, as `Float`.
    public var floatArray: [Float]? { mapArray(\.floatValue) }

    private func mapArray<T>(_ transform: (GGUFValue) -> T?) -> [T]? {
        guard case .array(let items) = self else { return nil }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let v = transform(item) else { return nil }
            out.append(v)
        }
        return out
    }
}
