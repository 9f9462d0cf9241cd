import Foundation
import VesselArtifact
import VesselManifest
import VesselPython
import VesselStore
import VesselSystem
#if canImport(Glibc)
import Glibc
#endif

/// A Python model's image: the interpreter this machine runs the model with, and the environment
/// its `vessel.lock` pins, built here and carried so that the container installs nothing.
///
/// - The **interpreter layer** (gzip; the same for every model built with this interpreter) is a
///   relocated CPython at `/vessel/python`: the executable as `bin/python3.X`, its standard
///   library (without tests, IDLE, Tk, ensurepip, site-packages and bytecode) at
///   `lib/python3.X`, and the shared libraries the executable and its extension modules need —
///   those the runtime layer does not already carry — in `lib`. CPython finds its prefix from
///   the executable's place (the `lib/python3.X/os.py` landmark), so nothing is patched.
/// - The **environment layer** (gzip; keyed by the lock) is a venv at
///   `/vessel/python/envs/KEY` (KEY: ``PythonEnvironment/environmentKey(_:interpreter:)`` for
///   the image's interpreter path) holding exactly the locked wheels, installed here from the
///   artifact's own wheel files with no package index, and the shared libraries outside it that
///   its extension modules need (`native/`). The runtime finds it through `VESSEL_PYTHON_ENVS`
///   and builds nothing; the wheel files themselves stay out of the image.
struct PythonImageParts {
    static let prefix = "/vessel/python"
    static let environments = prefix + "/envs"

    var interpreterLayer: ImageBuilder.Content.Tree
    var environmentLayer: ImageBuilder.Content.Tree?
    /// `major.minor.micro` of the interpreter.
    var version: String
    /// The interpreter on this machine, and where the image has it.
    var executable: String
    var executableInImage: String
    /// The environment's directory under ``environments``, when the model has requirements.
    var environmentKey: String?
    var libraries: [SharedLibraries.Library]
    var environmentLibraries: [SharedLibraries.Library]
    var packages: [PythonLock.Entry]
    var warnings: [String]

    /// Where the environment's outside libraries lie in the image.
    var nativeDirectory: String? { environmentKey.map { "\(Self.environments)/\($0)/native" } }

    /// The image's settings for the runtime to find the interpreter and the environment.
    var env: [String] {
        ["VESSEL_PYTHON=\(executableInImage)"] + (environmentKey == nil ? [] : ["\(PythonEnvironment.builtEnvironmentsVariable)=\(Self.environments)"])
    }

    /// `LD_LIBRARY_PATH` entries after the runtime's.
    var libraryPath: [String] { ["\(Self.prefix)/lib"] + (nativeDirectory.map { [$0] } ?? []) }

    /// What `python -c` tells of itself: its real executable (a venv's base), version and
    /// library directories.
    struct Probe: Decodable {
        var executable: String
        var version: String
        var micro: String
        var stdlib: String
        var dynload: String
        var implementation: String
    }

    static let probeScript = """
        import json, os, sys, sysconfig
        base = getattr(sys, "_base_executable", None) or sys.executable
        print(json.dumps({"executable": os.path.realpath(base), "version": "%d.%d" % sys.version_info[:2],
                          "micro": "%d.%d.%d" % sys.version_info[:3], "stdlib": os.path.realpath(sysconfig.get_path("stdlib")),
                          "dynload": os.path.realpath(sysconfig.get_config_var("DESTSHARED") or ""),
                          "implementation": sys.implementation.name}))
        """

    /// Top-level parts of the standard library an image never runs, and directories left out
    /// wherever they are.
    static let skippedTopLevel: Set<String> = ["site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip"]
    static let skippedDirectories: Set<String> = ["__pycache__", "test", "tests", "idle_test"]

    /// Collects the interpreter `manifest.runtime` asks for (`VESSEL_PYTHON`, else
    /// `python3.X`/`python3` on PATH) and, when the model has requirements, the environment
    /// built from `wheels` (a directory holding `vessel.lock` and `.vessel/wheels`).
    static func collect(
        manifest: Manifest, unpacked: String?, runtimeLibraries: SharedLibraries, environment: [String: String]
    ) throws -> PythonImageParts {
        let found = try PythonInterpreter.find(version: manifest.runtime.python, environment: environment)
        let ran = try PythonEnvironment.runScript(probeScript, arguments: [], interpreter: found, environment: environment)
        guard ran.status == 0, let line = ran.output.split(separator: "\n").last,
            let probe = try? JSONDecoder().decode(Probe.self, from: Data(line.utf8))
        else {
            throw ImageBuilder.BuildError.python("\(found) did not describe itself: \(ran.output.suffix(400))")
        }
        guard probe.implementation == "cpython" else {
            throw ImageBuilder.BuildError.python("\(found) is \(probe.implementation); images carry CPython only")
        }
        if let wanted = manifest.runtime.python, probe.micro != wanted, !probe.micro.hasPrefix(wanted + ".") {
            throw ImageBuilder.BuildError.python(
                "runtime.python is \(wanted), but \(found) is Python \(probe.micro); set VESSEL_PYTHON to a \(wanted) interpreter")
        }
        guard FileSystem.exists(probe.stdlib + "/os.py") else {
            throw ImageBuilder.BuildError.python("\(found)'s standard library is not at \(probe.stdlib)")
        }
        var warnings: [String] = []
        let versionDirectory = "python" + probe.version
        let imageExecutable = "\(prefix)/bin/\(versionDirectory)"
        let skipLibrary = Set(runtimeLibraries.libraries.map(\.name) + (runtimeLibraries.interpreter.map { [FileSystem.basename($0.requested)] } ?? []))

        // The interpreter: executable, standard library, extension modules' libraries.
        var tree = ImageBuilder.Content.Tree()
        let relativePrefix = String(prefix.dropFirst())
        tree.add(relativePrefix + "/bin/" + versionDirectory, .file(source: probe.executable, executable: true))
        tree.add(relativePrefix + "/bin/python3", .symlink(versionDirectory))
        tree.add(relativePrefix + "/bin/python", .symlink(versionDirectory))
        let stdlibTarget = relativePrefix + "/lib/" + versionDirectory
        try addTree(probe.stdlib, as: stdlibTarget, into: &tree) { relative, isDirectory in
            let first = relative.split(separator: "/").first.map(String.init) ?? relative
            if skippedTopLevel.contains(first) || first.hasPrefix("config-") { return false }
            if isDirectory { return !skippedDirectories.contains(FileSystem.basename(relative)) }
            return !relative.hasSuffix(".pyc") && !FileSystem.basename(relative).hasPrefix("_tkinter")
        }
        if !probe.dynload.isEmpty, !ResolvedPath.isInside(probe.dynload, directory: probe.stdlib) {
            try addTree(probe.dynload, as: stdlibTarget + "/lib-dynload", into: &tree) { _, _ in true }
        }
        var roots = [probe.executable]
        if FileSystem.isDirectory(probe.dynload) {
            roots += FileSystem.listDirectory(probe.dynload).filter { $0.hasSuffix(".so") && !$0.hasPrefix("_tkinter") }.sorted().map {
                probe.dynload + "/" + $0
            }
        }
        let (libraries, failures) = neededLibraries(of: roots) { !skipLibrary.contains($0.name) }
        // A module whose libraries are missing could not load here either; it is carried, and
        // fails as it would.
        warnings += failures.map { "\(FileSystem.basename($0.root)): \($0.error)" }
        let interpreterLibraries = libraries.values.sorted { $0.name < $1.name }
        for library in interpreterLibraries {
            tree.add(relativePrefix + "/lib/" + library.name, .file(source: library.path, executable: true))
        }

        var environmentKey: String?
        var environmentTree: ImageBuilder.Content.Tree?
        var environmentLibraries: [SharedLibraries.Library] = []
        var packages: [PythonLock.Entry] = []
        if !manifest.runtime.requirements.isEmpty {
            guard let unpacked, let lock = try PythonLock.read(directory: unpacked) else {
                throw ImageBuilder.BuildError.python(
                    "\(manifest.name) has runtime.requirements but its artifact carries no vessel.lock; pack it with this vessel")
            }
            packages = lock.entries
            if lock.python != probe.version {
                throw ImageBuilder.BuildError.python(
                    "vessel.lock was resolved for Python \(lock.python), but \(found) is Python \(probe.micro); set VESSEL_PYTHON to a \(lock.python) interpreter"
                )
            }
            // Installed here with the interpreter the image carries, from the artifact's wheels.
            let built = try PythonEnvironment.prepare(
                lock, wheels: unpacked + "/" + PythonLock.wheelDirectory, interpreter: probe.executable, environment: environment)
            let hostEnvironment = FileSystem.dirname(FileSystem.dirname(built))
            let key = PythonEnvironment.environmentKey(lock, interpreter: imageExecutable)
            let target = String(environments.dropFirst()) + "/" + key
            var layer = ImageBuilder.Content.Tree()
            layer.add(
                target + "/pyvenv.cfg",
                .bytes(
                    Array(
                        "home = \(prefix)/bin\ninclude-system-site-packages = false\nversion = \(probe.micro)\nexecutable = \(imageExecutable)\n".utf8
                    )))
            for name in ["python", "python3", versionDirectory] { layer.add(target + "/bin/" + name, .symlink(imageExecutable)) }
            layer.add(target + "/lib64", .symlink("lib"))
            let sitePackages = "lib/\(versionDirectory)/site-packages"
            var extensions: [String] = []
            try addTree(hostEnvironment + "/" + sitePackages, as: target + "/" + sitePackages, into: &layer) { relative, isDirectory in
                if isDirectory { return FileSystem.basename(relative) != "__pycache__" }
                let name = FileSystem.basename(relative)
                if name.hasSuffix(".so") || name.contains(".so.") { extensions.append(hostEnvironment + "/" + sitePackages + "/" + relative) }
                return !name.hasSuffix(".pyc")
            }
            layer.add(target + "/vessel.lock", .bytes(Array(lock.text.utf8)))
            layer.add(target + "/.vessel-complete", .bytes([]))
            // What the wheels' extension modules load from outside the environment (libstdc++,
            // libgomp, …): the wheels' own bundled libraries resolve inside it.
            let (needed, failures) = neededLibraries(of: extensions.sorted().filter { (try? ELFFile(path: $0)) != nil }) { library in
                !ResolvedPath.isInside(library.path, directory: hostEnvironment) && !skipLibrary.contains(library.name)
                    && libraries[library.name] == nil
            }
            var missing: Set<String> = []
            for failure in failures {
                guard let notFound = failure.error as? SharedLibraries.NotFound else { throw failure.error }
                missing.insert(notFound.library)
            }
            if !missing.isEmpty {
                warnings.append(
                    "libraries some extension modules in the environment load are not on this machine, and not in the image: "
                        + missing.sorted().joined(separator: ", "))
            }
            environmentLibraries = needed.values.sorted { $0.name < $1.name }
            for library in environmentLibraries {
                layer.add(target + "/native/" + library.name, .file(source: library.path, executable: true))
            }
            environmentTree = layer
            environmentKey = key
        }
        return PythonImageParts(
            interpreterLayer: tree, environmentLayer: environmentTree, version: probe.micro, executable: probe.executable,
            executableInImage: imageExecutable, environmentKey: environmentKey, libraries: interpreterLibraries, environmentLibraries: environmentLibraries,
            packages: packages,
            warnings: warnings)
    }

    /// The libraries `roots` load that `wanted` accepts, each name once (the first root's), and
    /// the roots whose libraries could not be resolved, with why.
    static func neededLibraries(
        of roots: [String], wanted: (SharedLibraries.Library) -> Bool
    ) -> (libraries: [String: SharedLibraries.Library], failures: [(root: String, error: any Error)]) {
        var libraries: [String: SharedLibraries.Library] = [:]
        var failures: [(root: String, error: any Error)] = []
        for root in roots {
            do {
                for library in try SharedLibraries.resolve(binary: root, environment: [:]).libraries where libraries[library.name] == nil && wanted(library) {
                    libraries[library.name] = library
                }
            } catch {
                failures.append((root, error))
            }
        }
        return (libraries, failures)
    }

    /// Adds every regular file and symlink under `source` at `target` (relative paths in the
    /// image), asking `keep` of each (path relative to `source`, whether a directory). A symlink
    /// to a file inside the tree stays a link; one leading out is carried as the file it names.
    static func addTree(_ source: String, as target: String, into tree: inout ImageBuilder.Content.Tree, keep: (String, Bool) -> Bool) throws {
        guard FileSystem.isDirectory(source) else { throw ImageBuilder.BuildError.python("\(source) is not a directory") }
        tree.addDirectories(leadingTo: target + "/.")
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? source : source + "/" + relative
            for name in FileSystem.listDirectory(directory).sorted() {
                let path = relative.isEmpty ? name : relative + "/" + name
                let full = source + "/" + path
                var info = stat()
                guard lstat(full, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    if keep(path, true) {
                        tree.add(target + "/" + path, .directory(mode: 0o755))
                        pending.append(path)
                    }
                case S_IFREG:
                    if keep(path, false) { tree.add(target + "/" + path, .file(source: full, executable: info.st_mode & 0o111 != 0)) }
                case S_IFLNK:
                    guard keep(path, false), let resolved = ResolvedPath.of(full), FileSystem.exists(resolved), !FileSystem.isDirectory(resolved) else {
                        continue
                    }
                    if ResolvedPath.isInside(resolved, directory: source), let link = try? FileManager.default.destinationOfSymbolicLink(atPath: full),
                        !link.hasPrefix("/")
                    {
                        tree.add(target + "/" + path, .symlink(link))
                    } else {
                        tree.add(target + "/" + path, .file(source: resolved, executable: false))
                    }
                default:
                    continue
                }
            }
        }
    }
}
