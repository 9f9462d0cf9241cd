/// Paths from archives and manifests are untrusted: this is the one place that decides whether
/// such a path stays inside the directory it is relative to.
public enum SafePath {
    /// The normalized relative form of `path` (no `.` components, no empty components), or a
    /// reason why it would leave its base: absolute, `..`, NUL, or empty.
    public static func normalize(_ path: String) -> Result<String, Problem> {
        if path.utf8.contains(0) { return .failure(.containsNUL) }
        if path.hasPrefix("/") { return .failure(.absolute) }
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { return .failure(.parentReference) }
            components.append(component)
        }
        if components.isEmpty { return .failure(.empty) }
        return .success(components.joined(separator: "/"))
    }

    public enum Problem: Error, Sendable, CustomStringConvertible {
        case absolute, parentReference, containsNUL, empty

        public var description: String {
            switch self {
            case .absolute: "is an absolute path"
            case .parentReference: "climbs out with `..`"
            case .containsNUL: "contains a NUL byte"
            case .empty: "has an empty path"
            }
        }
    }

    /// Whether a symlink at `linkPath` (relative, normalized) pointing to `target` resolves to a
    /// place inside the base directory, judged lexically.
    public static func symlinkStaysInside(linkPath: String, target: String) -> Bool {
        if target.hasPrefix("/") || target.isEmpty { return false }
        var stack = linkPath.split(separator: "/").dropLast().map(String.init)
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if stack.isEmpty { return false }
                stack.removeLast()
            } else {
                stack.append(String(component))
            }
        }
        return true
    }
}
