/// One dimension of a declared tensor shape: a fixed size, or dynamic (any size), optionally
/// named so that several inputs can say they share it (`batch`).
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case dynamic(name: String?)

    public var description: String {
        switch self {
        case .fixed(let size): String(size)
        case .dynamic(let name?): name
        case .dynamic(nil): "-1"
        }
    }

    /// Whether a concrete size is allowed in this position.
    public func accepts(_ size: Int) -> Bool {
        switch self {
        case .fixed(let expected): size == expected
        case .dynamic: size >= 0
        }
    }
}

/// As in a signature written out: a fixed size is a number, a named dynamic dimension its name,
/// an unnamed one `null`.
extension Dim: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .dynamic(name: nil)
        } else if let size = try? container.decode(Int.self) {
            guard size >= 0 else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a fixed dimension cannot be negative (\(size))")
            }
            self = .fixed(size)
        } else {
            self = .dynamic(name: try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .fixed(let size): try container.encode(size)
        case .dynamic(let name?): try container.encode(name)
        case .dynamic(nil): try container.encodeNil()
        }
    }
}
