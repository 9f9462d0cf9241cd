/// A reference to an artifact in a store: `NAME[:TAG]` or `NAME@sha256:HEX`.
///
/// Names follow the OCI distribution spec's repository grammar (lowercase components separated
/// by `/`), tags its tag grammar, so anything Vessel stores can also be pushed to a registry.
/// See https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
public struct Reference: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultTag = "latest"

    public init(name: String, tag: String? = nil, digest: Digest? = nil) {
        self.name = name
        self.tag = tag
        self.digest = digest
    }

    public enum ParseError: Error, Sendable, CustomStringConvertible {
        case empty
        case invalidName(String, reason: String)
        case invalidTag(String)
        case invalidDigest(String)

        public var description: String {
            switch self {
            case .empty: "empty reference; expected NAME[:TAG] or NAME@sha256:DIGEST"
            case .invalidName(let name, let reason): "invalid name `\(name)`: \(reason)"
            case .invalidTag(let tag):
                "invalid tag `\(tag)`: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
            case .invalidDigest(let text): "invalid digest `\(text)`: expected sha256: and 64 lowercase hex digits"
            }
        }
    }

    /// Parses `NAME`, `NAME:TAG` or `NAME@sha256:HEX`. A bare name means the `latest` tag.
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw .empty }
        if let at = text.firstIndex(of: "@") {
            let name = String(text[..<at])
            let digestText = String(text[text.index(after: at)...])
            guard let digest = Digest(parsing: digestText) else { throw .invalidDigest(digestText) }
            try Self.validate(name: name)
            self.init(name: name, digest: digest)
            return
        }
        var name = text
        var tag = Self.defaultTag
        // A colon after the last slash separates the tag (a colon before it would be a port).
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            name = String(text[..<colon])
            tag = String(text[text.index(after: colon)...])
        }
        try Self.validate(name: name)
        try Self.validate(tag: tag)
        self.init(name: name, tag: tag)
    }

    /// The string stored as `org.opencontainers.image.ref.name` in the store's index.
    public var refName: String? { tag.map { "\(name):\($0)" } }

    public var description: String {
        if let digest { return "\(name)@\(digest)" }
        return "\(name):\(tag ?? Self.defaultTag)"
    }

    public static func validate(name: String) throws(ParseError) {
        if let reason = nameProblem(name) { throw .invalidName(name, reason: reason) }
    }

    public static func validate(tag: String) throws(ParseError) {
        if !isValid(tag: tag) { throw .invalidTag(tag) }
    }

    /// Why `name` is not a valid repository name, or `nil` when it is.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "a name must not be empty" }
        if name.utf8.count > 255 { return "a name is at most 255 characters" }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty path component" }
            let bytes = Array(component.utf8)
            for byte in bytes where !(isLowerAlnum(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")) {
                if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte), nameProblem(name.lowercased()) == nil {
                    return "names are lowercase; use `\(name.lowercased())`"
                }
                return "only lowercase letters, digits, `.`, `_`, `-` and `/` are allowed"
            }
            guard isLowerAlnum(bytes.first!), isLowerAlnum(bytes.last!) else {
                return "each component must start and end with a letter or digit"
            }
            // Separators: one `.`, one or two `_`, or any run of `-`.
            var index = 0
            while index < bytes.count {
                if isLowerAlnum(bytes[index]) { index += 1; continue }
                var end = index
                while end < bytes.count, !isLowerAlnum(bytes[end]) { end += 1 }
                let separator = String(decoding: bytes[index..<end], as: UTF8.self)
                if !(separator == "." || separator == "_" || separator == "__" || separator.allSatisfy({ $0 == "-" })) {
                    return "`\(separator)` is not a valid separator (use `.`, `_`, `__` or dashes)"
                }
                index = end
            }
        }
        return nil
    }

    public static func isValid(tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard (1...128).contains(bytes.count) else { return false }
        func allowed(_ byte: UInt8) -> Bool {
            isAlnum(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
        return (isAlnum(bytes[0]) || bytes[0] == UInt8(ascii: "_")) && bytes.allSatisfy(allowed)
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}
