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
