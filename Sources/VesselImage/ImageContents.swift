import Crypto
import Foundation
public import VesselManifest
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
        /// The runtime binary at `/vessel/bin/vessel` and what it loads, and the model if any.
        case runtime(binary: String, libraries: SharedLibraries, model: UnpackedFileIndex?)
        /// A ModelCar's busybox and the model.
        case modelCar(shell: String, model: UnpackedFileIndex)

        /// Hashes every executable and library, and finds their Debian packages.
        public func read() throws -> ImageContents {
            switch self {
            case .runtime(let binary, let libraries, let model): try ImageContents.runtime(binary: binary, libraries: libraries, model: model)
            case .modelCar(let shell, let model): try ImageContents.modelCar(shell: shell, model: model)
            }
        }
    }

    /// The runtime binary at `/vessel/bin/vessel` and what it loads.
    static func runtime(binary: String, libraries: SharedLibraries, model: UnpackedFileIndex?) throws -> ImageContents {
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
        return ImageContents(
            executables: [try part(name: "vessel", pathInImage: ImageBuilder.Layout.binary, source: binary, packages: packages)], libraries: parts,
            swiftPackages: SwiftPackages.runtime, model: model)
    }

    /// A ModelCar's busybox and the model.
    static func modelCar(shell: String, model: UnpackedFileIndex) throws -> ImageContents {
        ImageContents(
            executables: [try part(name: "busybox", pathInImage: "/bin/busybox", source: shell, packages: DebianPackages())], libraries: [],
            swiftPackages: [], model: model)
    }
}
