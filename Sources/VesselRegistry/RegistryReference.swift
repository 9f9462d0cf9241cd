/// A reference to a repository in a registry: `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`.
///
/// As Docker reads them: the first component is a host when it has a `.` or a `:`, or is
/// `localhost`; otherwise the registry is Docker Hub, where a one-component path gets `library/`.
/// See https://github.com/distribution/reference (reference.go).
public struct RegistryReference: Sendable, Hashable, CustomStringConvertible {
    /// `host[:port]` as written (Docker Hub is `docker.io`).
    public var registry: String
    public var repository: String
    public var tag: String?
    public var digest: String?

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var text: String
        public var reason: String
        public var description: String { "`\(text)` is not a registry reference: \(reason)" }
    }

    public init(parsing text: String) throws {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard digest.hasPrefix("sha256:"), digest.count == 71, digest.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw ParseError(text: text, reason: "`\(digest)` is not a sha256 digest")
            }
            self.digest = digest
            rest = rest[..<at]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, !components.contains(where: \.isEmpty) else { throw ParseError(text: text, reason: "empty path component") }
        if components.count > 1, components[0].contains(".") || components[0].contains(":") || components[0] == "localhost" {
            registry = components.removeFirst()
        } else {
            registry = "docker.io"
        }
        if let last = components.last, let colon = last.lastIndex(of: ":") {
            let tag = String(last[last.index(after: colon)...])
            guard !tag.isEmpty, tag.count <= 128, tag.first != "." && tag.first != "-",
                tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
            else {
                throw ParseError(text: text, reason: "`\(tag)` is not a valid tag")
            }
            self.tag = tag
            components[components.count - 1] = String(last[..<colon])
        }
        if registry == "docker.io", components.count == 1 { components.insert("library", at: 0) }
        repository = components.joined(separator: "/")
        for component in components {
            guard !component.isEmpty, component.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) }),
                component.first?.isLetter == true || component.first?.isNumber == true
            else {
                throw ParseError(text: text, reason: "`\(component)` must be lowercase letters, digits and separators (. _ -)")
            }
        }
        if tag == nil, digest == nil { tag = "latest" }
    }

    /// The host that answers the API (Docker Hub's API lives elsewhere than its name).
    public var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    /// The tag, else the digest: what a manifest is fetched or put by.
    public var manifestReference: String { digest ?? tag ?? "latest" }

    public var description: String {
        var text = "\(registry)/\(repository)"
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }
}
