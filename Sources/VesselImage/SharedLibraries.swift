public import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VesselStore
import VesselSystem

/// The shared libraries a binary needs at run time, found the way the dynamic loader finds them.
///
/// For each `DT_NEEDED` name, in the loader's order (see ld.so(8)): the requesting object's
/// `DT_RPATH` (when it has no `DT_RUNPATH`), `LD_LIBRARY_PATH`, its `DT_RUNPATH`, the directories
/// of `/etc/ld.so.conf`, then the system directories. `$ORIGIN` expands to the object's
/// directory. Libraries loaded with `dlopen` (the BLAS) are not named in the binary; callers list
/// them as extra roots. A candidate for another machine type is skipped, as the loader does.
public struct SharedLibraries: Sendable {
    public struct Library: Sendable, Hashable {
        /// The name the loader looks for (`libc.so.6`).
        public var name: String
        /// The file it resolved to, symlinks followed.
        public var path: String
    }

    /// The binary's `PT_INTERP` (the dynamic loader), resolved to a file; nil for a static binary.
    public var interpreter: (requested: String, path: String)?
    /// Every library, the dlopen'ed ones and their dependencies too, in a stable order.
    public var libraries: [Library]

    public struct NotFound: Error, CustomStringConvertible {
        public var library: String
        public var neededBy: String
        public var searched: [String]
        public var description: String {
            "cannot find \(library), which \(neededBy) needs (searched \(searched.joined(separator: ", ")))"
        }
    }

    /// Resolves everything `binary` needs, plus `dlopened` libraries when present (each an
    /// alternative list: the first name found is taken, none found is not an error).
    public static func resolve(
        binary: String, dlopened: [[String]] = [], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> SharedLibraries {
        let root = try ELFFile(path: binary)
        let searchDefaults = systemDirectories()
        let libraryPath = (environment["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
        var interpreter: (String, String)?
        if let requested = root.interpreter {
            interpreter = (requested, try realPath(requested))
        }
        var found: [String: Library] = [:]
        var order: [String] = []
        var pending: [(name: String, requester: ELFFile, optional: Bool)] = root.needed.map { ($0, root, false) }
        for alternatives in dlopened {
            for name in alternatives {
                if let path = locate(name, requester: root, libraryPath: libraryPath, defaults: searchDefaults) {
                    pending.append((name, try ELFFile(path: path), true))
                    break
                }
            }
        }
        while !pending.isEmpty {
            let (name, requester, optional) = pending.removeFirst()
            if found[name] != nil { continue }
            // The loader itself is its own dependency of libc; it is shipped as the interpreter.
            if let interpreter, (name as NSString).lastPathComponent == (interpreter.0 as NSString).lastPathComponent { continue }
            guard let path = locate(name, requester: requester, libraryPath: libraryPath, defaults: searchDefaults) else {
                if optional { continue }
                throw NotFound(
                    library: name, neededBy: requester.path, searched: directories(for: requester, libraryPath: libraryPath, defaults: searchDefaults))
            }
            let library = try ELFFile(path: path)
            found[name] = Library(name: name, path: try realPath(path))
            order.append(name)
            pending += library.needed.map { ($0, library, false) }
        }
        return SharedLibraries(interpreter: interpreter, libraries: order.map { found[$0]! })
    }

    static func directories(for requester: ELFFile, libraryPath: [String], defaults: [String]) -> [String] {
        let origin = (requester.path as NSString).deletingLastPathComponent
        func expand(_ list: [String]) -> [String] {
            list.map { $0.replacingOccurrences(of: "${ORIGIN}", with: origin).replacingOccurrences(of: "$ORIGIN", with: origin) }
        }
        var result: [String] = []
        if requester.runpath.isEmpty { result += expand(requester.rpath) }
        result += libraryPath
        result += expand(requester.runpath)
        result += defaults
        return result
    }

    static func locate(_ name: String, requester: ELFFile, libraryPath: [String], defaults: [String]) -> String? {
        if name.contains("/") { return FileSystem.exists(name) ? name : nil }
        for directory in directories(for: requester, libraryPath: libraryPath, defaults: defaults) {
            let candidate = (directory as NSString).appendingPathComponent(name)
            guard FileSystem.exists(candidate), let elf = try? ELFFile(path: candidate), elf.machine == requester.machine else { continue }
            return candidate
        }
        return nil
    }

    /// `/etc/ld.so.conf` (with its `include` globs), then the multiarch and plain system directories.
    static func systemDirectories() -> [String] {
        var result: [String] = []
        var seen = Set<String>()
        func readConf(_ path: String, depth: Int) {
            guard depth < 8, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
            for rawLine in text.split(separator: "\n") {
                let line =
                    rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if line.isEmpty { continue }
                if line.hasPrefix("include ") {
                    let pattern = line.dropFirst("include ".count).trimmingCharacters(in: .whitespaces)
                    let absolute = pattern.hasPrefix("/") ? pattern : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(pattern)
                    for match in glob(absolute) { readConf(match, depth: depth + 1) }
                } else if line.hasPrefix("/"), seen.insert(line).inserted {
                    result.append(line)
                }
            }
        }
        readConf("/etc/ld.so.conf", depth: 0)
        for directory in [
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib"
        ] where seen.insert(directory).inserted {
            result.append(directory)
        }
        return result
    }

    static func glob(_ pattern: String) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard Glibc.glob(pattern, 0, nil, &matches) == 0 else { return [] }
        return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    static func realPath(_ path: String) throws -> String {
        guard let resolved = ResolvedPath.of(path) else { throw StoreError.io(operation: "cannot resolve", path: path, errno: errno) }
        return resolved
    }
}
