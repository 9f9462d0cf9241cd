#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto
import VesselManifest
import VesselStore

/// `vessel.lock`: a model's Python requirements resolved once, at pack time, to exact wheels —
/// each with its version, file name and sha256 — and recorded beside vessel.yaml. Later packs
/// reuse it while `runtime.requirements` and the Python version stay the same; serving installs
/// exactly these files, with hashes required and no package index.
///
/// The file is a pip requirements file (`name==version --hash=sha256:…  # file.whl`) under a
/// header that records what it was resolved from.
public struct PythonLock: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var version: String
        /// Lowercase hex.
        public var sha256: String
        /// The wheel's file name.
        public var file: String
    }

    public static let fileName = RuntimeSpec.lockFileName
    /// Where an artifact carries the wheels, relative to its root.
    public static let wheelDirectory = ".vessel/wheels"

    /// `major.minor` of the interpreter the wheels were chosen for.
    public var python: String
    /// `runtime.requirements` as they were when resolved.
    public var requirements: [String]
    public var entries: [Entry]

    public init(python: String, requirements: [String], entries: [Entry]) {
        self.python = python
        self.requirements = requirements
        self.entries = entries.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    public var text: String {
        var lines = [
            "# vessel.lock: runtime.requirements resolved to exact wheels by `vessel pack`; do not edit.",
            "# Delete it (or change runtime.requirements) to resolve again.",
            "# python: \(python)",
            "# requirements: \(requirements.joined(separator: " ; "))"
        ]
        for entry in entries { lines.append("\(entry.name)==\(entry.version) --hash=sha256:\(entry.sha256)  # \(entry.file)") }
        return lines.joined(separator: "\n") + "\n"
    }

    public init(text: String, path: String) throws(WorkerError) {
        var python: String?
        var requirements: [String]?
        var entries: [Entry] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmed
            if line.isEmpty { continue }
            if line.hasPrefix("# python: ") {
                python = String(line.dropFirst("# python: ".count))
            } else if line.hasPrefix("# requirements:") {
                let list = line.dropFirst("# requirements:".count).trimmed
                requirements = list.isEmpty ? [] : list.split(separator: " ; ").map { String($0).trimmed }
            } else if line.hasPrefix("#") {
                continue
            } else {
                // name==version --hash=sha256:HEX  # file.whl
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count == 4, parts[2] == "#", parts[1].hasPrefix("--hash=sha256:"),
                    let equals = Self.separator(in: parts[0])
                else {
                    throw .unavailable(
                        "\(path):\(number + 1): `\(line)` is not `name==version --hash=sha256:HEX  # file.whl`; delete the file to resolve again")
                }
                let hex = String(parts[1].dropFirst("--hash=sha256:".count))
                let file = String(parts[3])
                guard hex.count == 64, hex.allSatisfy(\.isHexDigit), file.hasSuffix(".whl"), !file.contains("/") else {
                    throw .unavailable("\(path):\(number + 1): a bad hash or wheel name; delete the file to resolve again")
                }
                let pin = Array(parts[0])
                entries.append(Entry(name: String(pin[..<equals]), version: String(pin[(equals + 2)...]), sha256: hex.lowercased(), file: file))
            }
        }
        guard let python, let requirements else {
            throw .unavailable("\(path) has no `# python:` or `# requirements:` header; delete it to resolve again")
        }
        self.init(python: python, requirements: requirements, entries: entries)
    }

    /// Where `==` is in `name==version`.
    static func separator(in pin: Substring) -> Int? {
        let characters = Array(pin)
        for k in 0..<max(characters.count - 1, 0) where characters[k] == "=" && characters[k + 1] == "=" { return k }
        return nil
    }

    public static func read(directory: String) throws(WorkerError) -> PythonLock? {
        let path = FileSystem.join(directory, fileName)
        guard FileSystem.exists(path) else { return nil }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path, limit: 4 << 20) } catch { throw .unavailable("cannot read \(path): \(error)") }
        return try PythonLock(text: String(decoding: bytes, as: UTF8.self), path: path)
    }
}

/// Resolving requirements to wheels (pack time, through pip and the configured index), and
/// building environments from them (serve time, no index: `--no-index --require-hashes`).
/// Wheels and environments are cached under ``cacheDirectory(environment:)``; an environment
/// is keyed by its lock and interpreter, so models with the same lock share one.
public enum PythonEnvironment {
    /// `VESSEL_CACHE`, else `$XDG_CACHE_HOME/vessel`, else `~/.cache/vessel`.
    public static func cacheDirectory(environment: [String: String]) -> String {
        if let chosen = environment["VESSEL_CACHE"], !chosen.isEmpty { return chosen }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/vessel" }
        return (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp") + "/.cache/vessel"
    }

    /// Where workers keep the bytecode of what they import (`PYTHONPYCACHEPREFIX`), so neither
    /// environments nor model directories get `__pycache__` files and later starts reuse it.
    public static func bytecodeCache(environment: [String: String]) -> String {
        cacheDirectory(environment: environment) + "/pycache"
    }

    public static func wheelCache(environment: [String: String]) -> String {
        cacheDirectory(environment: environment) + "/wheels"
    }

    /// Runs a Python program (`python -c CODE ARGUMENTS…`); its status and combined output.
    public static func runScript(
        _ code: String, arguments: [String], interpreter: String,
        environment: [String: String]
    ) throws(WorkerError) -> (status: Int32, output: String) {
        let result = try Subprocess.run([interpreter, "-c", code] + arguments, environment: environment)
        return (result.status, result.output)
    }

    /// The interpreter's `major.minor`.
    public static func version(of interpreter: String, environment: [String: String]) throws(WorkerError) -> String {
        let result = try Subprocess.run([interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], environment: environment)
        guard result.status == 0 else { throw .unavailable("\(interpreter) does not run: \(result.tail)") }
        return result.output.trimmed
    }

    /// Resolves `requirements` with pip (its configured index, `PIP_INDEX_URL`/`PIP_FIND_LINKS`
    /// honoured) to wheels only, stores them in the wheel cache, and returns the lock.
    public static func resolve(requirements: [String], interpreter: String, environment: [String: String]) throws(WorkerError) -> PythonLock {
        let python = try version(of: interpreter, environment: environment)
        let staging = try temporaryDirectory(in: cacheDirectory(environment: environment), label: "resolve")
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let requirementsFile = staging + "/requirements.in"
        do { try FileSystem.writeAtomically(Array((requirements.joined(separator: "\n") + "\n").utf8), to: requirementsFile) } catch {
            throw .unavailable("cannot write \(requirementsFile): \(error)")
        }
        let result = try Subprocess.run(
            [
                interpreter, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                "--only-binary=:all:", "--dest", staging + "/wheels", "-r", requirementsFile
            ], environment: environment)
        guard result.status == 0 else {
            throw .unavailable(
                """
                pip could not resolve runtime.requirements to wheels for Python \(python) on this platform:
                \(result.tail)
                (every requirement must have a wheel: an sdist needing a compiler, or a VCS URL, cannot be pinned and vendored)
                """)
        }
        let cache = wheelCache(environment: environment)
        do { try FileSystem.makeDirectories(cache) } catch { throw .unavailable("cannot create \(cache): \(error)") }
        var entries: [PythonLock.Entry] = []
        for file in FileSystem.listDirectory(staging + "/wheels") where file.hasSuffix(".whl") {
            let parts = file.dropLast(4).split(separator: "-")
            guard parts.count >= 5 else { throw .unavailable("pip downloaded `\(file)`, which is not a wheel's file name") }
            let source = staging + "/wheels/" + file
            let hex = try sha256(of: source)
            let target = cache + "/" + file
            if !FileSystem.exists(target) || (try? sha256(of: target)) != hex {
                guard rename(source, target) == 0 else { throw .unavailable("cannot move \(file) into \(cache): \(String(cString: strerror(errno)))") }
            }
            entries.append(PythonLock.Entry(name: String(parts[0]), version: String(parts[1]), sha256: hex, file: file))
        }
        return PythonLock(python: python, requirements: requirements, entries: entries)
    }

    /// Wheels of `lock` missing from `directory`, downloaded with their hashes checked (pack time).
    public static func fetch(_ lock: PythonLock, interpreter: String, environment: [String: String]) throws(WorkerError) {
        let cache = wheelCache(environment: environment)
        let missing = lock.entries.filter { entry in (try? sha256(of: cache + "/" + entry.file)) != entry.sha256 }
        guard !missing.isEmpty else { return }
        let staging = try temporaryDirectory(in: cacheDirectory(environment: environment), label: "fetch")
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let partial = PythonLock(python: lock.python, requirements: lock.requirements, entries: missing)
        do { try FileSystem.writeAtomically(Array(partial.text.utf8), to: staging + "/missing.lock") } catch {
            throw .unavailable("cannot write \(staging)/missing.lock: \(error)")
        }
        let result = try Subprocess.run(
            [
                interpreter, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                "--only-binary=:all:", "--no-deps", "--require-hashes", "--dest", staging + "/wheels",
                "-r", staging + "/missing.lock"
            ], environment: environment)
        guard result.status == 0 else { throw .unavailable("pip could not download the wheels vessel.lock names:\n\(result.tail)") }
        for entry in missing {
            let source = staging + "/wheels/" + entry.file
            guard (try? sha256(of: source)) == entry.sha256 else {
                throw .unavailable("pip did not download \(entry.file) with the sha256 vessel.lock records; delete vessel.lock to resolve again")
            }
            guard rename(source, cache + "/" + entry.file) == 0 else { throw .unavailable("cannot move \(entry.file) into \(cache)") }
        }
    }

    /// Where an image keeps the environments built for it (`/vessel/python/envs`), each under
    /// its ``environmentKey(_:interpreter:)``: found there, an environment is used as it is.
    public static let builtEnvironmentsVariable = "VESSEL_PYTHON_ENVS"

    /// The name of the environment holding `lock`'s wheels for `interpreter` (its path as the
    /// workers will run it): the lock's text and the path, hashed.
    public static func environmentKey(_ lock: PythonLock, interpreter: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(lock.text.utf8))
        hasher.update(data: Array(("\n" + interpreter).utf8))
        return String(Digest(bytes: hasher.finalize()).hex.prefix(32))
    }

    /// The Python of an environment holding exactly `lock`'s wheels from `wheels`, built once
    /// per (lock, interpreter) with the index off and every hash checked, then reused.
    public static func prepare(_ lock: PythonLock, wheels: String, interpreter: String, environment: [String: String]) throws(WorkerError) -> String {
        let key = environmentKey(lock, interpreter: interpreter)
        // An image's environment, built with the image (read-only, never written here).
        if let built = environment[builtEnvironmentsVariable], !built.isEmpty, FileSystem.exists(built + "/" + key + "/.vessel-complete") {
            return built + "/" + key + "/bin/python"
        }
        let root = cacheDirectory(environment: environment) + "/envs"
        let target = root + "/" + key
        if FileSystem.exists(target + "/.vessel-complete") { return target + "/bin/python" }
        for entry in lock.entries where !FileSystem.exists(wheels + "/" + entry.file) {
            throw .unavailable("the wheel \(entry.file) that vessel.lock names is not in \(wheels); `vessel pack` downloads it")
        }
        let staging = try temporaryDirectory(in: root, label: String(key))
        var moved = false
        defer { if !moved { try? FileManager.default.removeItem(atPath: staging) } }
        // The interpreter's own pip installs into a venv made without one (`pip --python`, pip
        // 22.3+): seconds faster than bootstrapping pip into every environment. Without a pip of
        // its own, the venv gets one.
        let pipVersion = try Subprocess.run([interpreter, "-m", "pip", "--version"], environment: environment)
        let ownPip =
            pipVersion.status == 0 && pipVersion.output.hasPrefix("pip ")
            && pipVersion.output.dropFirst(4).split(separator: " ").first.map { version in
                let parts = version.split(separator: ".").compactMap { Int($0) }
                return parts.count >= 2 && (parts[0], parts[1]) >= (22, 3)
            } == true
        let venv = try Subprocess.run([interpreter, "-m", "venv"] + (ownPip ? ["--without-pip"] : []) + [staging], environment: environment)
        guard venv.status == 0 else {
            throw .unavailable("\(interpreter) -m venv failed (on Debian, install python3-venv):\n\(venv.tail)")
        }
        // Exactly the lock's files, so pip cannot pick another build of the same version.
        let links = staging + "/.wheels"
        do { try FileSystem.makeDirectories(links) } catch { throw .unavailable("cannot create \(links)") }
        for entry in lock.entries where symlink(wheels + "/" + entry.file, links + "/" + entry.file) != 0 {
            throw .unavailable("cannot link \(entry.file): \(String(cString: strerror(errno)))")
        }
        do { try FileSystem.writeAtomically(Array(lock.text.utf8), to: staging + "/vessel.lock") } catch {
            throw .unavailable("cannot write the lock into \(staging)")
        }
        var quiet = environment
        quiet["PIP_NO_INDEX"] = "1"
        // No bytecode compiled here (most of an install's time, for files never imported):
        // workers compile what they import once, into the cache's pycache tree.
        let pip = ownPip ? [interpreter, "-m", "pip", "--python", staging + "/bin/python"] : [staging + "/bin/python", "-m", "pip"]
        let install = try Subprocess.run(
            pip + [
                "install", "--disable-pip-version-check", "--no-input", "--no-compile",
                "--no-index", "--no-deps", "--require-hashes", "--find-links", links,
                "-r", staging + "/vessel.lock"
            ], environment: quiet)
        guard install.status == 0 else { throw .unavailable("installing the vendored wheels failed:\n\(install.tail)") }
        try? FileManager.default.removeItem(atPath: links)
        do { try FileSystem.writeAtomically([], to: staging + "/.vessel-complete") } catch { throw .unavailable("cannot finish \(staging)") }
        // Another process may have built the same environment meanwhile: theirs is as good.
        moved = rename(staging, target) == 0
        if !moved, !FileSystem.exists(target + "/.vessel-complete") {
            throw .unavailable("cannot move the environment to \(target): \(String(cString: strerror(errno)))")
        }
        return target + "/bin/python"
    }

    /// The wheel a lock entry names, in `directory`, if its sha256 is the lock's.
    public static func verifiedWheel(_ entry: PythonLock.Entry, in directory: String) -> String? {
        let path = directory + "/" + entry.file
        return (try? sha256(of: path)) == entry.sha256 ? path : nil
    }

    static func sha256(of path: String) throws(WorkerError) -> String {
        var hasher = SHA256()
        do {
            let descriptor = try FileSystem.openForReading(path)
            defer { close(descriptor) }
            try FileSystem.forEachChunk(descriptor, path: path) { hasher.update(bufferPointer: $0) }
        } catch {
            throw .unavailable("cannot read \(path): \(error)")
        }
        return Digest(bytes: hasher.finalize()).hex
    }

    /// A new directory `parent/.LABEL-XXXXXX` (parent created if needed).
    public static func temporaryDirectory(in parent: String, label: String) throws(WorkerError) -> String {
        do { try FileSystem.makeDirectories(parent) } catch { throw .unavailable("cannot create \(parent): \(error)") }
        var template = Array("\(parent)/.\(label)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .unavailable("cannot create a directory in \(parent): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and newlines.
    var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}

extension PythonEnvironment {
    /// What `vessel pack` does for a Python model with requirements: reuses `vessel.lock` while
    /// it was resolved from the same requirements for the same Python (fetching any wheel the
    /// cache lacks), else resolves them and writes it. Returns the lock and whether it is new.
    public static func lock(
        directory: String, requirements: [String], python: String?, environment: [String: String]
    ) throws(WorkerError) -> (PythonLock, resolved: Bool) {
        let interpreter = try PythonInterpreter.find(version: python, environment: environment)
        let version = try version(of: interpreter, environment: environment)
        if let existing = try PythonLock.read(directory: directory), existing.requirements == requirements, existing.python == version {
            try fetch(existing, interpreter: interpreter, environment: environment)
            return (existing, false)
        }
        let lock = try resolve(requirements: requirements, interpreter: interpreter, environment: environment)
        let path = FileSystem.join(directory, PythonLock.fileName)
        do { try FileSystem.writeAtomically(Array(lock.text.utf8), to: path) } catch { throw .unavailable("cannot write \(path): \(error)") }
        return (lock, true)
    }

    /// The interpreter a model's workers run: with a lock, the environment built from its wheels
    /// (in the artifact's `.vessel/wheels`, else the wheel cache); without, the interpreter found.
    public static func interpreter(directory: String, requirements: [String], python: String?, environment: [String: String]) throws(WorkerError) -> String {
        let base = try PythonInterpreter.find(version: python, environment: environment)
        guard !requirements.isEmpty, let lock = try PythonLock.read(directory: directory) else { return base }
        let carried = FileSystem.join(directory, PythonLock.wheelDirectory)
        let wheels = FileSystem.isDirectory(carried) ? carried : wheelCache(environment: environment)
        return try prepare(lock, wheels: wheels, interpreter: base, environment: environment)
    }
}
