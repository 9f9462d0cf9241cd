import Crypto
import Foundation
public import VesselManifest
import VesselPython
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// What an image built here holds, for its SBOM and provenance: the executables and shared
/// libraries with their content digests and the Debian packages that installed them, the Swift
/// packages the runtime is built from, and the model's files.
public struct ImageContents: Sendable {
    public struct Part: Sendable, Hashable {
        /// The file name (`libz.so.1`, `vessel`, `busybox`).
        public var name: String
        /// Where it lies in the image.
        public var pathInImage: String
        /// Where it came from on this machine.
        public var source: String
        /// SHA-256, hex.
        public var sha256: String
        public var package: DebianPackages.Package?
    }

    /// The runtime binary, or a ModelCar's busybox.
    public var executables: [Part]
    /// Shared libraries and the dynamic loader.
    public var libraries: [Part]
    /// The Swift packages of the runtime binary (none for a ModelCar).
    public var swiftPackages: [SwiftPackages.Package]
    /// The model's files; nil for the runtime image.
    public var model: UnpackedFileIndex?
    /// A Python model's packages, as its vessel.lock pins them (installed in the image).
    public var pythonPackages: [PythonPackage] = []

    /// One locked wheel installed in the image's Python environment.
    public struct PythonPackage: Sendable, Hashable {
        public var name: String
        public var version: String
        /// The wheel's file name and SHA-256 (hex), as vessel.lock records them.
        public var wheel: String
        public var sha256: String
    }

    /// What a Python model's image adds: the interpreter, the libraries it and the environment
    /// load, the locked packages.
    public struct PythonParts: Sendable {
        var executable: String
        var executableInImage: String
        var libraries: [(name: String, source: String, pathInImage: String)]
        var packages: [PythonPackage]

        init(_ parts: PythonImageParts) {
            executable = parts.executable
            executableInImage = parts.executableInImage
            let native = parts.nativeDirectory ?? ""
            libraries =
                parts.libraries.map { ($0.name, $0.path, PythonImageParts.prefix + "/lib/" + $0.name) }
                + parts.environmentLibraries.map { ($0.name, $0.path, native + "/" + $0.name) }
            packages = parts.packages.map { PythonPackage(name: $0.name, version: $0.version, wheel: $0.file, sha256: $0.sha256) }
        }
    }

    static func part(name: String, pathInImage: String, source: String, packages: DebianPackages) throws -> Part {
        let fd = try FileSystem.openForReading(source)
        defer { close(fd) }
        var hasher = SHA256()
        try FileSystem.forEachChunk(fd, path: source) { hasher.update(bufferPointer: $0) }
        let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return Part(name: name, pathInImage: pathInImage, source: source, sha256: hex, package: packages.owner(of: source))
    }

    /// What a build takes stock of, kept so that the hashing is done only when the contents are
    /// wanted (`vessel image` attaching its SBOM; not `--no-attestations` or `vessel deploy`).
    public enum Source: Sendable {
        /// The runtime binary at `/vessel/bin/vessel` and what it loads, the model if any, and a
        /// Python model's interpreter and environment.
        case runtime(binary: String, libraries: SharedLibraries, model: UnpackedFileIndex?, python: PythonParts? = nil)
        /// A ModelCar's busybox and the model.
        case modelCar(shell: String, model: UnpackedFileIndex)

        /// Hashes every executable and library, and finds their Debian packages.
        public func read() throws -> ImageContents {
            switch self {
            case .runtime(let binary, let libraries, let model, let python):
                try ImageContents.runtime(binary: binary, libraries: libraries, model: model, python: python)
            case .modelCar(let shell, let model): try ImageContents.modelCar(shell: shell, model: model)
            }
        }
    }

    /// The runtime binary at `/vessel/bin/vessel` and what it loads.
    static func runtime(binary: String, libraries: SharedLibraries, model: UnpackedFileIndex?, python: PythonParts?) throws -> ImageContents {
        let packages = DebianPackages()
        var parts: [Part] = []
        if let interpreter = libraries.interpreter {
            parts.append(
                try part(name: FileSystem.basename(interpreter.requested), pathInImage: interpreter.requested, source: interpreter.path, packages: packages))
        }
        for library in libraries.libraries {
            parts.append(
                try part(name: library.name, pathInImage: ImageBuilder.Layout.libraries + "/" + library.name, source: library.path, packages: packages))
        }
        var executables = [try part(name: "vessel", pathInImage: ImageBuilder.Layout.binary, source: binary, packages: packages)]
        if let python {
            executables.append(
                try part(
                    name: FileSystem.basename(python.executableInImage), pathInImage: python.executableInImage, source: python.executable, packages: packages))
            for library in python.libraries {
                parts.append(try part(name: library.name, pathInImage: library.pathInImage, source: library.source, packages: packages))
            }
        }
        return ImageContents(
            executables: executables, libraries: parts, swiftPackages: SwiftPackages.runtime, model: model, pythonPackages: python?.packages ?? [])
    }

    /// A ModelCar's busybox and the model.
    static func modelCar(shell: String, model: UnpackedFileIndex) throws -> ImageContents {
        ImageContents(
            executables: [try part(name: "busybox", pathInImage: "/bin/busybox", source: shell, packages: DebianPackages())], libraries: [],
            swiftPackages: [], model: model)
    }
}
