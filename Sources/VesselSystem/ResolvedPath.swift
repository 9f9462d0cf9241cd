#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Paths as the kernel resolves them: the one place vessel calls realpath(3), and the one
/// containment check built on it (model files, external data, vessel.yaml itself, shared
/// libraries for images all ask "where does this really lead?").
public enum ResolvedPath {
    /// The canonical absolute path of an existing file, every symlink on the way followed
    /// (relative or absolute); nil if it does not exist or cannot be resolved.
    public static func of(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` resolves to `directory` itself (when `allowingItself`) or to something
    /// inside it; false if either does not resolve.
    public static func isInside(_ path: String, directory: String, allowingItself: Bool = false) -> Bool {
        guard let resolved = of(path), let base = of(directory.isEmpty ? "." : directory) else { return false }
        if resolved == base { return allowingItself }
        return resolved.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}
